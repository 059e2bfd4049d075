//! The provenn constraint language.
//!
//! Constraints are written as text against a dataset's schema, in the data's own units, and
//! lowered to a typed IR ([`ir`]) that every solver crate consumes. See
//! `docs/constraint-language.md` for the grammar.
//!
//! ```
//! use provenn_dsl::{compile, Bindings, ir::Assignment};
//! let b = Bindings::anonymous(&[(0.0, 1.0), (0.0, 1.0)], 2);
//! let c = &compile("forall x: x[0] <= 0.5 => y[0] > y[1]", &b).unwrap()[0];
//! let holds = |x: &[f64], y: &[f64]| c.holds(&Assignment { x, y, x2: &[], y2: &[] });
//! assert!(holds(&[0.2, 0.0], &[1.0, 0.0]));
//! assert!(!holds(&[0.2, 0.0], &[0.0, 1.0]));
//! assert!(holds(&[0.9, 0.0], &[0.0, 1.0]));
//! ```
#![forbid(unsafe_code)]

pub mod ast;
mod error;
pub mod ir;
mod lexer;
mod lower;
mod parser;
mod rows;
pub mod views;
pub mod vnnlib;

pub use error::{DslError, Span};
pub use lower::{lower, Bindings};
pub use parser::parse;
pub use rows::{check_rows, RowCheck};

/// Parses and lowers constraint text against `bindings`.
pub fn compile(src: &str, bindings: &Bindings) -> Result<Vec<ir::Constraint>, DslError> {
    lower(&parse(src)?, bindings)
}
