//! Why an analysis fails: [`BtaError`]. A module of its own (it needs only
//! the spec's error), so that the modules returning it (`program.rs`) do
//! not import the crate root, which imports them.

use wiper_sem::SemError;
use wiper_x86::DecodeError;

use crate::spec::SpecError;

/// Why a function could not be analysed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BtaError {
    /// The function could not be decoded.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// An instruction of the function has no semantics.
    #[error(transparent)]
    Sem(#[from] SemError),
    /// A malformed static spec.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// The spec names an argument the function does not read.
    #[error("static input arg{index} is out of range: the function reads {}", reads_text(*reads))]
    ArgumentOutOfRange {
        /// The argument named.
        index: u32,
        /// How many stack arguments the function reads.
        reads: u32,
    },
}

fn reads_text(n: u32) -> String {
    match n {
        0 => "no stack arguments".to_owned(),
        1 => "only 1 stack argument (arg0)".to_owned(),
        n => format!("only {n} stack arguments (arg0..arg{})", n - 1),
    }
}
