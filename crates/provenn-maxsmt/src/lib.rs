//! SMT/MaxSMT over universally quantified constraints (not yet implemented; owned by the
//! MaxSMT issue).
//!
//! This crate will encode constraint IR into Z3 (system libz3 4.8.12), provide Fu-Malik and a
//! core-guided MaxSMT solver behind one trait, and eliminate ∀ over boxes exactly for the linear
//! fragment, as used by the SaDe/DeepSaDe trainers.
