//! MILP encodings of ReLU networks (not yet implemented; owned by the MILP issue).
//!
//! This crate will encode `provenn-nn` networks as mixed-integer programs on good_lp with the
//! HiGHS backend, using bounds from `provenn-bounds`, to certify constraints, find and re-check
//! counterexamples, and compute abductive explanations.
