//! ONNX import and export of fully-connected networks.
//!
//! Reads the graph with `onnx-protobuf` (Rust types generated from the official `onnx.proto`
//! with rust-protobuf 3: pure Rust, no `protoc` at build time, no C++ runtime) and folds the
//! supported operators into an [`Mlp`]:
//!
//! * `MatMul`, `Gemm` (with `alpha`, `beta`, `transA = 0`, `transB`), `Add`/`Sub`/`Mul`/`Div`
//!   by constants — composed into the pending affine map;
//! * `Relu`, `LeakyRelu`, `Sigmoid`, `Tanh` — close a dense layer;
//! * `Flatten`, `Reshape`, `Identity`, `Squeeze`, `Unsqueeze` — no-ops on a flat vector;
//! * initializers that are also listed as graph inputs (older exporters) are constants.
//!
//! Input normalisation (`Sub`/`Div` before the first `MatMul`) is folded into the first layer
//! and output scaling into the last: exact in real arithmetic, within rounding in `f64`. Any
//! other operator is an error naming it and its node. [`evaluate_graph`] interprets the graph
//! node by node — an independent path used to check an import. [`export_onnx`] writes a
//! network as `MatMul`/`Add`/activation nodes with `double` tensors, so that importing the
//! export gives back the same weights bit for bit (a `LeakyRelu` slope is an ONNX `float`).
use std::collections::HashMap;

use nalgebra::{DMatrix, DVector};
use onnx_protobuf::{GraphProto, Message, ModelProto, NodeProto, TensorProto};
use thiserror::Error;

use crate::{Activation, Dense, Mlp, NnError};

/// Why an ONNX file could not be imported.
#[derive(Debug, Error, PartialEq)]
pub enum OnnxError {
    /// Not a decodable ONNX protobuf.
    #[error("not a valid ONNX model: {0}")]
    Decode(String),
    /// An operator outside the supported set.
    #[error("unsupported operator `{op}` in node `{node}`")]
    Unsupported {
        /// Operator type.
        op: String,
        /// Node name.
        node: String,
    },
    /// The graph does not describe a fully-connected network.
    #[error("not a fully-connected network: {0}")]
    Structure(String),
}

fn structure(msg: impl Into<String>) -> OnnxError {
    OnnxError::Structure(msg.into())
}

/// A constant tensor in row-major order.
#[derive(Debug, Clone)]
struct Tensor {
    dims: Vec<usize>,
    data: Vec<f64>,
}

fn tensor(t: &TensorProto) -> Result<Tensor, OnnxError> {
    let dims: Vec<usize> = t
        .dims
        .iter()
        .map(|&d| {
            usize::try_from(d)
                .map_err(|_| structure(format!("tensor `{}` has a negative dimension", t.name)))
        })
        .collect::<Result<_, _>>()?;
    let n: usize = dims
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| structure("tensor too large"))?;
    let data: Vec<f64> = match t.data_type {
        1 if !t.float_data.is_empty() => t.float_data.iter().map(|&v| f64::from(v)).collect(),
        1 => t
            .raw_data
            .chunks_exact(4)
            .map(|c| f64::from(f32::from_le_bytes([c[0], c[1], c[2], c[3]])))
            .collect(),
        11 if !t.double_data.is_empty() => t.double_data.clone(),
        11 => t
            .raw_data
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect(),
        7 if !t.int64_data.is_empty() => t.int64_data.iter().map(|&v| v as f64).collect(),
        7 => t
            .raw_data
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes")) as f64)
            .collect(),
        other => {
            return Err(structure(format!(
                "tensor `{}` has unsupported element type {other}",
                t.name
            )))
        }
    };
    if data.len() != n {
        return Err(structure(format!(
            "tensor `{}` has {} values for shape {dims:?}",
            t.name,
            data.len()
        )));
    }
    Ok(Tensor { dims, data })
}

fn decode(bytes: &[u8]) -> Result<GraphProto, OnnxError> {
    let m = ModelProto::parse_from_bytes(bytes).map_err(|e| OnnxError::Decode(e.to_string()))?;
    m.graph
        .into_option()
        .ok_or_else(|| structure("the model has no graph"))
}

fn constants(g: &GraphProto) -> Result<HashMap<String, Tensor>, OnnxError> {
    let mut c = HashMap::new();
    for t in &g.initializer {
        c.insert(t.name.clone(), tensor(t)?);
    }
    for n in &g.node {
        if n.op_type == "Constant" {
            let t = n
                .attribute
                .iter()
                .find(|a| a.name == "value")
                .and_then(|a| a.t.as_ref())
                .ok_or_else(|| {
                    structure(format!("Constant node `{}` without a tensor value", n.name))
                })?;
            let out = n
                .output
                .first()
                .ok_or_else(|| structure("Constant without output"))?;
            c.insert(out.clone(), tensor(t)?);
        }
    }
    Ok(c)
}

/// The single non-constant graph input and its flattened width.
fn graph_input(
    g: &GraphProto,
    consts: &HashMap<String, Tensor>,
) -> Result<(String, usize), OnnxError> {
    let inputs: Vec<_> = g
        .input
        .iter()
        .filter(|i| !consts.contains_key(&i.name))
        .collect();
    let [inp] = inputs.as_slice() else {
        return Err(structure(format!(
            "expected one non-constant input, found {}",
            inputs.len()
        )));
    };
    let dims: Vec<i64> = inp
        .type_
        .as_ref()
        .and_then(|t| {
            t.tensor_type().shape.as_ref().map(|s| {
                s.dim
                    .iter()
                    .map(|d| if d.has_dim_value() { d.dim_value() } else { 1 })
                    .collect()
            })
        })
        .unwrap_or_default();
    let width = dims
        .iter()
        .skip(if dims.len() > 1 { 1 } else { 0 })
        .product::<i64>();
    let width = usize::try_from(width)
        .ok()
        .filter(|w| *w > 0)
        .ok_or_else(|| structure(format!("input `{}` has no usable shape", inp.name)))?;
    Ok((inp.name.clone(), width))
}

fn attr_f(n: &NodeProto, name: &str, default: f64) -> f64 {
    n.attribute
        .iter()
        .find(|a| a.name == name)
        .map_or(default, |a| f64::from(a.f))
}
fn attr_i(n: &NodeProto, name: &str, default: i64) -> i64 {
    n.attribute
        .iter()
        .find(|a| a.name == name)
        .map_or(default, |a| a.i)
}

/// A constant as a vector broadcast to `width`.
fn broadcast(t: &Tensor, width: usize, node: &NodeProto) -> Result<DVector<f64>, OnnxError> {
    match t.data.len() {
        1 => Ok(DVector::from_element(width, t.data[0])),
        n if n == width => Ok(DVector::from_vec(t.data.clone())),
        n => Err(structure(format!(
            "node `{}`: constant of {n} values on a vector of {width}",
            node.name
        ))),
    }
}

/// A weight constant as the matrix `out × in` of `y = W·x` for `y = x·B` (`transposed` = the
/// stored matrix is already `out × in`).
fn weight(
    t: &Tensor,
    width: usize,
    transposed: bool,
    node: &NodeProto,
) -> Result<DMatrix<f64>, OnnxError> {
    let [r, c] = t.dims.as_slice() else {
        return Err(structure(format!(
            "node `{}`: weight of shape {:?}, expected 2-D",
            node.name, t.dims
        )));
    };
    let stored = DMatrix::from_row_slice(*r, *c, &t.data);
    let w = if transposed {
        stored
    } else {
        stored.transpose()
    };
    if w.ncols() != width {
        return Err(structure(format!(
            "node `{}`: weight takes {} inputs, the vector has {width}",
            node.name,
            w.ncols()
        )));
    }
    Ok(w)
}

/// Imports an ONNX model of a fully-connected ReLU network.
pub fn import_onnx(bytes: &[u8]) -> Result<Mlp, OnnxError> {
    let g = decode(bytes)?;
    let consts = constants(&g)?;
    let (input, n_inputs) = graph_input(&g, &consts)?;
    // the value flowing through the graph: closed layers + a pending affine map
    let mut current = input;
    let mut layers: Vec<Dense> = Vec::new();
    let mut width = n_inputs;
    let mut w = DMatrix::<f64>::identity(width, width);
    let mut b = DVector::<f64>::zeros(width);
    let mut pending = false;
    for n in &g.node {
        if n.op_type == "Constant" {
            continue;
        }
        let ins: Vec<&String> = n.input.iter().filter(|s| !s.is_empty()).collect();
        let flows = ins.iter().position(|s| **s == current);
        let Some(pos) = flows else {
            // a node not on the main path (e.g. a shape computation) must be constant-only
            if ins.iter().all(|s| consts.contains_key(*s))
                && matches!(
                    n.op_type.as_str(),
                    "Shape" | "Gather" | "Concat" | "Unsqueeze" | "Reshape"
                )
            {
                continue;
            }
            return Err(structure(format!(
                "node `{}` ({}) does not consume the network's value",
                n.name, n.op_type
            )));
        };
        let other = |k: usize| -> Result<&Tensor, OnnxError> {
            ins.get(k).and_then(|s| consts.get(*s)).ok_or_else(|| {
                structure(format!("node `{}`: operand {k} is not a constant", n.name))
            })
        };
        match n.op_type.as_str() {
            "Flatten" | "Reshape" | "Identity" | "Squeeze" | "Unsqueeze" | "Dropout" => {}
            "Add" | "Sub" => {
                let c = broadcast(other(1 - pos)?, width, n)?;
                if n.op_type == "Add" {
                    b += c;
                } else if pos == 0 {
                    b -= c;
                } else {
                    // c − v
                    w = -w;
                    b = c - b;
                }
                pending = true;
            }
            "Mul" | "Div" => {
                if n.op_type == "Div" && pos != 0 {
                    return Err(structure(format!(
                        "node `{}`: division by the network's value",
                        n.name
                    )));
                }
                let c = broadcast(other(1 - pos)?, width, n)?;
                let c = if n.op_type == "Div" {
                    c.map(|v| 1.0 / v)
                } else {
                    c
                };
                for i in 0..width {
                    w.row_mut(i).scale_mut(c[i]);
                    b[i] *= c[i];
                }
                pending = true;
            }
            "MatMul" | "Gemm" => {
                let (mut m, bias) = if n.op_type == "MatMul" {
                    if pos == 0 {
                        (weight(other(1)?, width, false, n)?, None)
                    } else {
                        (weight(other(0)?, width, true, n)?, None)
                    }
                } else {
                    if pos != 0 || attr_i(n, "transA", 0) != 0 {
                        return Err(OnnxError::Unsupported {
                            op: "Gemm with transA or the network as B".into(),
                            node: n.name.clone(),
                        });
                    }
                    let m = weight(other(1)?, width, attr_i(n, "transB", 0) != 0, n)?;
                    let bias = if ins.len() > 2 {
                        Some(broadcast(other(2)?, m.nrows(), n)? * attr_f(n, "beta", 1.0))
                    } else {
                        None
                    };
                    (m * attr_f(n, "alpha", 1.0), bias)
                };
                b = &m * &b;
                w = &m * &w;
                if let Some(c) = bias {
                    b += c;
                }
                m.fill(0.0);
                width = w.nrows();
                pending = true;
            }
            "Relu" | "LeakyRelu" | "Sigmoid" | "Tanh" => {
                let act = match n.op_type.as_str() {
                    "Relu" => Activation::Relu,
                    "LeakyRelu" => Activation::LeakyRelu(attr_f(n, "alpha", 0.01)),
                    "Sigmoid" => Activation::Sigmoid,
                    _ => Activation::Tanh,
                };
                let layer = Dense::new(w.clone(), b.clone(), act)
                    .map_err(|e| structure(format!("node `{}`: {e}", n.name)))?;
                layers.push(layer);
                w = DMatrix::identity(width, width);
                b = DVector::zeros(width);
                pending = false;
            }
            op => {
                return Err(OnnxError::Unsupported {
                    op: op.to_string(),
                    node: n.name.clone(),
                })
            }
        }
        current = n
            .output
            .first()
            .cloned()
            .ok_or_else(|| structure(format!("node `{}` has no output", n.name)))?;
    }
    if pending || layers.is_empty() {
        layers.push(Dense::new(w, b, Activation::Identity).map_err(|e| structure(e.to_string()))?);
    }
    Mlp::from_layers(n_inputs, layers, vec![]).map_err(|e: NnError| structure(e.to_string()))
}

/// Evaluates the ONNX graph literally, node by node, in `f64` (the reference for checking an
/// import; supports the same operators plus `Constant`).
pub fn evaluate_graph(bytes: &[u8], x: &[f64]) -> Result<Vec<f64>, OnnxError> {
    let g = decode(bytes)?;
    let consts = constants(&g)?;
    let (input, _) = graph_input(&g, &consts)?;
    let mut vals: HashMap<String, Vec<f64>> = HashMap::new();
    vals.insert(input, x.to_vec());
    let get = |vals: &HashMap<String, Vec<f64>>, s: &str| -> Option<Vec<f64>> {
        vals.get(s)
            .cloned()
            .or_else(|| consts.get(s).map(|t| t.data.clone()))
    };
    let mut last = String::new();
    for n in &g.node {
        if n.op_type == "Constant"
            || n.input
                .iter()
                .all(|s| consts.contains_key(s) || s.is_empty())
        {
            continue;
        }
        let a = get(&vals, &n.input[0])
            .ok_or_else(|| structure(format!("node `{}`: missing input", n.name)))?;
        let bin = |f: fn(f64, f64) -> f64| -> Result<Vec<f64>, OnnxError> {
            let c = get(&vals, &n.input[1]).ok_or_else(|| structure("missing operand"))?;
            if a.is_empty() || c.is_empty() {
                return Err(structure(format!("node `{}`: empty operand", n.name)));
            }
            let len = a.len().max(c.len());
            Ok((0..len)
                .map(|i| f(a[i % a.len()], c[i % c.len()]))
                .collect())
        };
        let out = match n.op_type.as_str() {
            "Flatten" | "Reshape" | "Identity" | "Squeeze" | "Unsqueeze" | "Dropout" => a,
            "Add" => bin(|p, q| p + q)?,
            "Sub" => bin(|p, q| p - q)?,
            "Mul" => bin(|p, q| p * q)?,
            "Div" => bin(|p, q| p / q)?,
            "Relu" => a.iter().map(|v| v.max(0.0)).collect(),
            "LeakyRelu" => {
                let alpha = attr_f(n, "alpha", 0.01);
                a.iter()
                    .map(|&v| if v >= 0.0 { v } else { alpha * v })
                    .collect()
            }
            "Sigmoid" => a.iter().map(|v| 1.0 / (1.0 + (-v).exp())).collect(),
            "Tanh" => a.iter().map(|v| v.tanh()).collect(),
            "MatMul" | "Gemm" => {
                let t = consts
                    .get(&n.input[1])
                    .ok_or_else(|| structure("weight is not a constant"))?;
                let [r, c] = t.dims.as_slice() else {
                    return Err(structure("weight is not 2-D"));
                };
                let trans = n.op_type == "Gemm" && attr_i(n, "transB", 0) != 0;
                let (rows_in, cols_out) = if trans { (*c, *r) } else { (*r, *c) };
                if a.len() != rows_in {
                    return Err(structure(format!(
                        "node `{}`: {} inputs for a {rows_in}-row weight",
                        n.name,
                        a.len()
                    )));
                }
                let alpha = if n.op_type == "Gemm" {
                    attr_f(n, "alpha", 1.0)
                } else {
                    1.0
                };
                let mut y = vec![0.0; cols_out];
                for (o, yo) in y.iter_mut().enumerate() {
                    for (i, ai) in a.iter().enumerate().take(rows_in) {
                        let wv = if trans {
                            t.data[o * c + i]
                        } else {
                            t.data[i * c + o]
                        };
                        *yo += ai * wv;
                    }
                    *yo *= alpha;
                }
                if n.op_type == "Gemm" && n.input.len() > 2 {
                    let bias = &consts
                        .get(&n.input[2])
                        .ok_or_else(|| structure("bias is not a constant"))?
                        .data;
                    let beta = attr_f(n, "beta", 1.0);
                    for (o, yo) in y.iter_mut().enumerate() {
                        *yo += beta * bias[o % bias.len()];
                    }
                }
                y
            }
            op => {
                return Err(OnnxError::Unsupported {
                    op: op.to_string(),
                    node: n.name.clone(),
                })
            }
        };
        last = n
            .output
            .first()
            .cloned()
            .ok_or_else(|| structure(format!("node `{}` has no output", n.name)))?;
        vals.insert(last.clone(), out);
    }
    vals.remove(&last)
        .ok_or_else(|| structure("the graph computes nothing"))
}

/// Exports a network as an ONNX model (opset 13; input `x` of shape `[N, n_inputs]`, output
/// `y`; weights and biases as `double` tensors). Networks with skip features are not
/// expressible in the operator set the importer reads and give an error.
pub fn export_onnx(net: &Mlp) -> Result<Vec<u8>, OnnxError> {
    use onnx_protobuf::{
        attribute_proto::AttributeType, tensor_shape_proto, type_proto, AttributeProto,
        OperatorSetIdProto, TensorShapeProto, TypeProto, ValueInfoProto,
    };
    if !net.skip_features().is_empty() {
        return Err(OnnxError::Unsupported {
            op: "skip features (the last layer reading inputs directly)".into(),
            node: "export".into(),
        });
    }
    const DOUBLE: i32 = 11;
    let value_info = |name: &str, width: usize| {
        let mut shape = TensorShapeProto::new();
        let mut batch = tensor_shape_proto::Dimension::new();
        batch.value = Some(tensor_shape_proto::dimension::Value::DimParam("N".into()));
        let mut w = tensor_shape_proto::Dimension::new();
        w.value = Some(tensor_shape_proto::dimension::Value::DimValue(width as i64));
        shape.dim = vec![batch, w];
        let mut t = type_proto::Tensor::new();
        t.elem_type = DOUBLE;
        t.shape = Some(shape).into();
        let mut ty = TypeProto::new();
        ty.value = Some(type_proto::Value::TensorType(t));
        let mut v = ValueInfoProto::new();
        v.name = name.into();
        v.type_ = Some(ty).into();
        v
    };
    let tensor = |name: String, dims: Vec<i64>, data: Vec<f64>| {
        let mut t = TensorProto::new();
        t.name = name;
        t.dims = dims;
        t.data_type = DOUBLE;
        t.double_data = data;
        t
    };
    let node = |op: &str, name: String, inputs: Vec<String>, output: String| {
        let mut n = NodeProto::new();
        n.op_type = op.into();
        n.name = name;
        n.input = inputs;
        n.output = vec![output];
        n
    };
    let mut g = GraphProto::new();
    g.name = "provenn".into();
    g.input.push(value_info("x", net.n_inputs()));
    g.output.push(value_info("y", net.n_outputs()));
    let mut current = "x".to_string();
    let last = net.layers().len() - 1;
    for (l, layer) in net.layers().iter().enumerate() {
        let w = layer.weights(); // out × in
        let (out, inp) = w.shape();
        // MatMul(v, Wᵀ): the initializer is `in × out`, row-major.
        let wt: Vec<f64> = (0..inp)
            .flat_map(|i| (0..out).map(move |o| (i, o)))
            .map(|(i, o)| w[(o, i)])
            .collect();
        g.initializer
            .push(tensor(format!("W{l}"), vec![inp as i64, out as i64], wt));
        g.initializer.push(tensor(
            format!("b{l}"),
            vec![out as i64],
            layer.bias().iter().copied().collect(),
        ));
        let is_last_affine = l == last && layer.activation() == Activation::Identity;
        let z = if is_last_affine {
            "y".to_string()
        } else {
            format!("z{l}")
        };
        g.node.push(node(
            "MatMul",
            format!("matmul{l}"),
            vec![current.clone(), format!("W{l}")],
            format!("m{l}"),
        ));
        g.node.push(node(
            "Add",
            format!("add{l}"),
            vec![format!("m{l}"), format!("b{l}")],
            z.clone(),
        ));
        current = z;
        let op = match layer.activation() {
            Activation::Identity => None,
            Activation::Relu => Some(("Relu", None)),
            Activation::LeakyRelu(a) => Some(("LeakyRelu", Some(a))),
            Activation::Sigmoid => Some(("Sigmoid", None)),
            Activation::Tanh => Some(("Tanh", None)),
        };
        if let Some((op, alpha)) = op {
            let out_name = if l == last {
                "y".to_string()
            } else {
                format!("h{l}")
            };
            let mut n = node(
                op,
                format!("act{l}"),
                vec![current.clone()],
                out_name.clone(),
            );
            if let Some(a) = alpha {
                let mut at = AttributeProto::new();
                at.name = "alpha".into();
                at.type_ = AttributeType::FLOAT.into();
                at.f = a as f32;
                n.attribute.push(at);
            }
            g.node.push(n);
            current = out_name;
        } else if l != last {
            // An identity hidden layer: name its output for the next MatMul.
            let out_name = format!("h{l}");
            g.node.push(node(
                "Identity",
                format!("id{l}"),
                vec![current.clone()],
                out_name.clone(),
            ));
            current = out_name;
        }
    }
    let mut m = ModelProto::new();
    m.ir_version = 8;
    m.producer_name = "provenn".into();
    m.producer_version = env!("CARGO_PKG_VERSION").into();
    let mut opset = OperatorSetIdProto::new();
    opset.version = 13;
    m.opset_import.push(opset);
    m.graph = Some(g).into();
    m.write_to_bytes()
        .map_err(|e| OnnxError::Decode(format!("encoding: {e}")))
}
