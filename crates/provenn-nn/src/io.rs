//! Saving and loading networks.
//!
//! The binary format is a fixed header followed by a bincode payload:
//!
//! | bytes | content |
//! |---|---|
//! | 8 | magic `PRVNNMLP` |
//! | 2 | format version (little-endian `u16`) |
//! | 4 | length `s` of the architecture summary (`u32`) |
//! | `s` | architecture summary, UTF-8 (e.g. `4-[16 relu]-[3 identity]`) |
//! | 8 | payload length `p` (`u64`) |
//! | 8 | FNV-1a 64-bit checksum of the payload |
//! | `p` | bincode-encoded [`MlpRepr`] |
//!
//! Reading checks every field in order and returns a [`FormatError`] naming the first problem;
//! the decoded network is validated like any other (shapes, finite values), and its summary must
//! equal the header's. No input makes the reader panic or allocate more than the payload length.
use std::path::Path;

use nalgebra::{DMatrix, DVector};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::{Activation, Dense, Mlp, NnError};

/// File magic.
pub const MAGIC: &[u8; 8] = b"PRVNNMLP";
/// Current format version.
pub const FORMAT_VERSION: u16 = 1;
/// Longest architecture summary accepted.
const MAX_SUMMARY: u32 = 1 << 16;

/// Why a network file could not be read.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum FormatError {
    /// The file does not start with the provenn magic bytes.
    #[error("not a provenn network file (magic bytes {found:02x?}, expected {MAGIC:02x?})")]
    BadMagic {
        /// The bytes found.
        found: Vec<u8>,
    },
    /// Written by an unknown format version.
    #[error("unsupported format version {found} (this build reads version {supported})")]
    UnsupportedVersion {
        /// Version in the file.
        found: u16,
        /// Version this build reads.
        supported: u16,
    },
    /// The file ends early.
    #[error("file truncated in the {section}: needs {needed} bytes, {available} available")]
    Truncated {
        /// Which part of the file.
        section: &'static str,
        /// Bytes needed.
        needed: u64,
        /// Bytes present.
        available: u64,
    },
    /// Bytes after the payload.
    #[error("{0} unexpected bytes after the payload")]
    TrailingBytes(u64),
    /// The payload's checksum does not match.
    #[error("payload checksum mismatch (header {expected:016x}, computed {computed:016x}): the file is corrupted")]
    ChecksumMismatch {
        /// Checksum in the header.
        expected: u64,
        /// Checksum of the bytes read.
        computed: u64,
    },
    /// The summary is not UTF-8 or too long.
    #[error("bad architecture summary: {0}")]
    BadSummary(String),
    /// The payload does not decode.
    #[error("payload does not decode: {0}")]
    Corrupt(String),
    /// The payload decodes to an invalid network.
    #[error("payload describes an invalid network: {0}")]
    Invalid(String),
}

/// Serialisable description of one dense layer (weights as rows).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DenseRepr {
    /// Activation.
    pub activation: Activation,
    /// Weight rows: `weights[i][j]` is the weight from input `j` to neuron `i`.
    pub weights: Vec<Vec<f64>>,
    /// Biases, one per neuron.
    pub bias: Vec<f64>,
}

/// Serialisable description of an [`Mlp`]; the JSON export has exactly this shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MlpRepr {
    /// Number of inputs.
    pub n_inputs: usize,
    /// Skip features copied into the last layer's input.
    pub skip_features: Vec<usize>,
    /// Layers, first to last.
    pub layers: Vec<DenseRepr>,
}

impl From<&Mlp> for MlpRepr {
    fn from(net: &Mlp) -> Self {
        MlpRepr {
            n_inputs: net.n_inputs(),
            skip_features: net.skip_features().to_vec(),
            layers: net
                .layers()
                .iter()
                .map(|l| DenseRepr {
                    activation: l.activation(),
                    weights: l
                        .weights()
                        .row_iter()
                        .map(|r| r.iter().copied().collect())
                        .collect(),
                    bias: l.bias().iter().copied().collect(),
                })
                .collect(),
        }
    }
}

impl TryFrom<MlpRepr> for Mlp {
    type Error = NnError;
    fn try_from(r: MlpRepr) -> Result<Self, NnError> {
        let mut layers = Vec::with_capacity(r.layers.len());
        for (i, l) in r.layers.into_iter().enumerate() {
            let rows = l.weights.len();
            let cols = l.weights.first().map_or(0, Vec::len);
            if l.weights.iter().any(|row| row.len() != cols) {
                return Err(NnError::InvalidConfig(format!(
                    "layer {i}: weight rows have different lengths"
                )));
            }
            if l.weights
                .iter()
                .flatten()
                .chain(&l.bias)
                .any(|v| !v.is_finite())
            {
                return Err(NnError::InvalidConfig(format!(
                    "layer {i}: non-finite weight or bias"
                )));
            }
            let w = DMatrix::from_fn(rows, cols, |a, b| l.weights[a][b]);
            layers.push(Dense::new(w, DVector::from_vec(l.bias), l.activation)?);
        }
        Mlp::from_layers(r.n_inputs, layers, r.skip_features)
    }
}

/// FNV-1a, 64 bit: detects the corruption a truncated copy or a flipped byte causes.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn bincode_options() -> impl bincode::Options {
    use bincode::Options;
    bincode::DefaultOptions::new().with_little_endian()
}

/// Encodes a network in the binary format.
pub fn to_bytes(net: &Mlp) -> Vec<u8> {
    use bincode::Options;
    let payload = bincode_options()
        .serialize(&MlpRepr::from(net))
        .expect("serialising plain data cannot fail");
    let summary = net.summary();
    let mut out = Vec::with_capacity(payload.len() + summary.len() + 30);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&(summary.len() as u32).to_le_bytes());
    out.extend_from_slice(summary.as_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(&fnv1a(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
    out
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: u64, section: &'static str) -> Result<&'a [u8], FormatError> {
        let available = (self.buf.len() - self.pos) as u64;
        if n > available {
            return Err(FormatError::Truncated {
                section,
                needed: n,
                available,
            });
        }
        let s = &self.buf[self.pos..self.pos + n as usize];
        self.pos += n as usize;
        Ok(s)
    }
    fn array<const N: usize>(&mut self, section: &'static str) -> Result<[u8; N], FormatError> {
        Ok(self
            .take(N as u64, section)?
            .try_into()
            .expect("length checked"))
    }
}

/// Decodes a network from the binary format.
pub fn from_bytes(bytes: &[u8]) -> Result<Mlp, FormatError> {
    use bincode::Options;
    let mut r = Reader { buf: bytes, pos: 0 };
    let magic_len = bytes.len().min(MAGIC.len());
    if bytes[..magic_len] != MAGIC[..magic_len] {
        return Err(FormatError::BadMagic {
            found: bytes[..magic_len].to_vec(),
        });
    }
    r.take(MAGIC.len() as u64, "magic")?;
    let version = u16::from_le_bytes(r.array("format version")?);
    if version != FORMAT_VERSION {
        return Err(FormatError::UnsupportedVersion {
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    let slen = u32::from_le_bytes(r.array("summary length")?);
    if slen > MAX_SUMMARY {
        return Err(FormatError::BadSummary(format!(
            "length {slen} exceeds {MAX_SUMMARY}"
        )));
    }
    let summary = std::str::from_utf8(r.take(u64::from(slen), "summary")?)
        .map_err(|e| FormatError::BadSummary(e.to_string()))?
        .to_owned();
    let plen = u64::from_le_bytes(r.array("payload length")?);
    let checksum = u64::from_le_bytes(r.array("checksum")?);
    let payload = r.take(plen, "payload")?;
    let trailing = (bytes.len() - r.pos) as u64;
    if trailing > 0 {
        return Err(FormatError::TrailingBytes(trailing));
    }
    let computed = fnv1a(payload);
    if computed != checksum {
        return Err(FormatError::ChecksumMismatch {
            expected: checksum,
            computed,
        });
    }
    let repr: MlpRepr = bincode_options()
        .with_limit(plen)
        .deserialize(payload)
        .map_err(|e| FormatError::Corrupt(e.to_string()))?;
    let net = Mlp::try_from(repr).map_err(|e| FormatError::Invalid(e.to_string()))?;
    if net.summary() != summary {
        return Err(FormatError::Invalid(format!(
            "header says `{summary}` but the payload is `{}`",
            net.summary()
        )));
    }
    Ok(net)
}

/// Writes a network to `path` in the binary format.
pub fn save(net: &Mlp, path: impl AsRef<Path>) -> Result<(), NnError> {
    let path = path.as_ref();
    std::fs::write(path, to_bytes(net)).map_err(|source| NnError::Io {
        path: path.display().to_string(),
        source,
    })
}

/// Reads a network from `path`.
pub fn load(path: impl AsRef<Path>) -> Result<Mlp, NnError> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|source| NnError::Io {
        path: path.display().to_string(),
        source,
    })?;
    Ok(from_bytes(&bytes)?)
}

/// Human-readable JSON export (the shape of [`MlpRepr`]).
pub fn to_json(net: &Mlp) -> String {
    serde_json::to_string_pretty(&MlpRepr::from(net)).expect("plain data serialises")
}

/// Reads the JSON export back, validating the network.
pub fn from_json(s: &str) -> Result<Mlp, NnError> {
    let repr: MlpRepr = serde_json::from_str(s)
        .map_err(|e| NnError::Format(FormatError::Corrupt(e.to_string())))?;
    Mlp::try_from(repr)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MlpBuilder;

    fn net() -> Mlp {
        MlpBuilder::new(3)
            .hidden(4, Activation::LeakyRelu(0.1))
            .output(2, Activation::Sigmoid)
            .skip_features(vec![2])
            .seed(11)
            .build()
            .unwrap()
    }

    #[test]
    fn round_trip_is_exact() {
        let n = net();
        assert_eq!(from_bytes(&to_bytes(&n)).unwrap(), n);
        assert_eq!(from_json(&to_json(&n)).unwrap(), n);
    }

    #[test]
    fn each_header_field_has_its_own_error() {
        let good = to_bytes(&net());
        let mut b = good.clone();
        b[0] = b'X';
        assert!(matches!(from_bytes(&b), Err(FormatError::BadMagic { .. })));
        let mut b = good.clone();
        b[8] = 9;
        assert_eq!(
            from_bytes(&b),
            Err(FormatError::UnsupportedVersion {
                found: 9,
                supported: 1
            })
        );
        assert!(matches!(
            from_bytes(&good[..good.len() - 1]),
            Err(FormatError::Truncated {
                section: "payload",
                ..
            })
        ));
        let mut b = good.clone();
        *b.last_mut().unwrap() ^= 1;
        assert!(matches!(
            from_bytes(&b),
            Err(FormatError::ChecksumMismatch { .. })
        ));
        let mut b = good.clone();
        b.push(0);
        assert_eq!(from_bytes(&b), Err(FormatError::TrailingBytes(1)));
        assert!(matches!(
            from_bytes(&[]),
            Err(FormatError::Truncated { .. })
        ));
    }
}
