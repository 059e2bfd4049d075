//! Bound propagation for provenn networks (not yet implemented; owned by the bounds issue).
//!
//! This crate will hold sound interval (Box/IBP) and CROWN bounds over input boxes, with
//! outward rounding so that every bound contains both the real-arithmetic value and the `f64`
//! value of `provenn_nn`'s forward pass, plus relational (two-copy) bounds for global properties.
//! It depends only on `provenn-nn`.
