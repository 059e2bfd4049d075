//! The provenn constraint language (not yet implemented; owned by the DSL issue).
//!
//! This crate will parse constraints written against a dataset schema (from `provenn-data`)
//! into a typed intermediate representation shared by every solver crate, evaluate them on
//! concrete inputs and outputs, and read and write VNN-LIB.
