//! wiper, the partial evaluator for IA-32 machine code, as a library.
//!
//! The items at the top ([`Binary`], [`Function`], [`Spec`],
//! [`specialize`], [`Residual`], [`Error`]) are the API for your own crate:
//! they run the same pipeline as `wiper specialize`. The modules are the
//! subcommands of the `wiper` command line, shared by its binaries (`wiper`
//! and the benchmark runner `wiper-bench`).
//!
//! ```
//! let binary = wiper::Binary::open("testdata/bin/power-O2")?;
//! let power = binary.function("power")?;
//! let spec = wiper::Spec::parse(&["arg1=1", "arg2=2"])?;
//! let residual = wiper::specialize(&binary, &power, &spec)?;
//! let summary = residual.summary();
//! assert!(summary.residual_instructions < summary.original_instructions);
//! assert!(residual.listing().contains("; reduced from 0x"));
//! # Ok::<(), wiper::Error>(())
//! ```
//!
//! `examples/snapshot.rs` snapshot-tests a residual listing with insta, as
//! your own tests would (`cargo test --example snapshot`).

mod api;
pub mod callgrind;
pub mod check;
pub mod commands;
pub mod extract;
pub mod info;
mod json;
pub mod report;

pub use api::{
    extract, specialize, specialize_with, Binary, Error, Function, FunctionFate, Options,
    ProcessImage, Residual, Spec, Summary, Warning,
};
