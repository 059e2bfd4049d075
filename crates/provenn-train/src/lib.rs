//! Constraint-aware trainers (not yet implemented; owned by the trainers issue).
//!
//! This crate will hold the SaDe and DeepSaDe trainers, relational-property (SMiLE-style)
//! training, and the baselines (FFN, REG, SL, SBR), each returning models certified by an
//! independent check from `provenn-milp`.
