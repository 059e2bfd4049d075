//! HardNet enforcement layers (not yet implemented; owned by the HardNet issue).
//!
//! This crate will provide HardNet-Aff (closed-form projection onto input-dependent affine
//! constraints, differentiable through `provenn-nn`'s vector–Jacobian products) and HardNet-Cvx
//! (a QP projection with implicit differentiation).
