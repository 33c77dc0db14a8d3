//! The QFBV expression language of wiper: quantifier-free bit-vector terms
//! (widths 1..=64) plus one memory sort (an array from 32-bit addresses to
//! bytes), shared by the instruction semantics, the binding-time analysis, the
//! specializer and the synthesizer.
//!
//! * [`ExprPool`] hash-conses expressions into an arena and hands out `Copy`
//!   [`ExprId`]s: structurally equal expressions get equal ids, so comparing
//!   and hashing terms is O(1).
//! * Every builder method (`p.add(a, b)`, `p.bv(0x10, 32)`, `p.var("eax", 32)`,
//!   …) **simplifies at construction** (see [`simplify`] for
//!   the rule list), so formulas stay small while the specializer substitutes
//!   static values into them. [`ExprPool::mk_raw`] builds a node verbatim.
//! * [`ExprPool::eval`] evaluates concretely with SMT-LIB semantics (division
//!   by zero, over-wide shifts), [`Z3Translator`]/[`Prover`] decide equivalence
//!   with Z3, and [`ExprPool::display`]/[`ExprPool::display_smt`] print terms
//!   with let-bound sharing and a size cap.
//!
//! Ids and ids of variables belong to the pool that made them; mixing pools is
//! a programmer error (the [`Prover`] checks it).
//!
//! ```
//! use wiper_qfbv::ExprPool;
//! let mut p = ExprPool::new();
//! let eax = p.var("eax", 32);
//! let one = p.bv(1, 32);
//! let two = p.bv(2, 32);
//! let a = p.add(eax, one);
//! let b = p.add(a, one);
//! assert_eq!(b, p.add(eax, two)); // (eax + 1) + 1 == eax + 2, by construction
//! assert_eq!(p.display(b).to_string(), "eax + 0x2");
//! ```

mod build;
pub mod bv;
mod eval;
mod fx;
mod lia;
mod op;
mod pool;
mod print;
mod smt;
mod traverse;

pub use eval::{Assignment, Env, EvalError, MemImage, MemValue, Value};
pub use fx::{FxHashMap, FxHashSet, FxHasher};
pub use op::{Op, Sort, VarId};
pub use pool::{simplify, ExprId, ExprPool};
pub use print::{Printer, Syntax};
pub use smt::{Counterexample, ProofResult, Prover, ProverStats, Z3Term, Z3Translator};

/// Errors raised when an expression is built from data that does not type-check
/// (bad widths, sort mismatches, conflicting variable declarations).
///
/// The panicking builder methods report the same errors as panics; the
/// `try_*`/[`ExprPool::mk`] entry points return them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QfbvError {
    /// A bit-vector width outside `1..=64`.
    #[error("bit-vector width {0} is outside 1..=64")]
    BadWidth(u32),
    /// An operator was applied to arguments of the wrong number or sorts, or with
    /// bad parameters.
    #[error("ill-sorted `{op}`: {detail}")]
    IllSorted {
        /// Name of the operator.
        op: &'static str,
        /// What is wrong.
        detail: String,
    },
    /// A variable name was declared twice with different sorts.
    #[error("variable `{name}` already has sort {existing}, not {requested}")]
    VarSortConflict {
        /// The variable's name.
        name: String,
        /// Sort of the existing declaration.
        existing: Sort,
        /// Sort asked for now.
        requested: Sort,
    },
}
