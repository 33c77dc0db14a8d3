//! The specializer of wiper: turns a function and values for some of its
//! inputs into residual code (Eval, Reduce, Emit), following WiPEr
//! (Srinivasan & Reps, OOPSLA 2015).
//!
//! Specialization walks the function's instructions from its entry over a
//! static store ([`state::Store`]). For each instruction the decoupled
//! parts are evaluated symbolically ([`eval`]): what the store determines is
//! computed now (Eval); what is left is a residual formula, for which the
//! original instruction is re-emitted when all its inputs are in the
//! machine (Emit), code is synthesized and proved by Z3 (Reduce, in
//! `wiper-synth`), or, as a last resort, the static inputs are materialized
//! before the original instruction (fallback). Specialization points are
//! (block start, static store) pairs kept in a memo table, so loops with a
//! static trip count unroll and loops with dynamic control stay loops.
//! See `docs/specialization.md` for the design and its assumptions.
//!
//! The crate prints nothing: the figures of a run are in [`Stats`], and
//! what the specializer decides on the way (the whistle's
//! generalizations, the final counts, whether `edx` is live at the
//! function's return and why) goes to [`tracing`] events at the `debug`
//! level of the target `wiper_specialize`.
//!
//! ```no_run
//! let binary = wiper_elf::Binary::open("testdata/bin/power-O2".as_ref()).unwrap();
//! let entry = wiper_x86::resolve_function(&binary, "power").unwrap();
//! let spec: wiper_bta::StaticSpec = "arg1=1 arg2=2".parse().unwrap();
//! let s = wiper_specialize::specialize(&binary, entry, &spec, &Default::default()).unwrap();
//! println!("{} residual blocks", s.residual.blocks.len());
//! ```

mod driver;
mod eval;
mod function;
mod linear;
mod materialize;
pub mod relations;
pub mod state;
mod warnings;

use std::time::Duration;

use wiper_bta::StaticSpec;
use wiper_elf::Binary;
use wiper_residual::{Label, Residual};

pub use warnings::Warning;

/// Specializes the function at `entry` of `binary` for the static inputs
/// `spec`. The residual is as the specializer made it; the next stage,
/// `wiper-opt`, cleans it up.
pub fn specialize(
    binary: &Binary,
    entry: u32,
    spec: &StaticSpec,
    options: &Options,
) -> Result<Specialization, SpecializeError> {
    driver::specialize(binary, entry, Start::Function(spec), options)
}

/// Specializes the code at `entry` of `binary` as `start` enters it: a
/// function with a spec ([`specialize`]), or a whole process with a fixed
/// command line (component extraction; docs/extraction.md).
pub fn specialize_from(
    binary: &Binary,
    entry: u32,
    start: Start<'_>,
    options: &Options,
) -> Result<Specialization, SpecializeError> {
    driver::specialize(binary, entry, start, options)
}

/// How the specialized code is entered, and what is static there.
#[derive(Debug, Clone, Copy)]
pub enum Start<'a> {
    /// A function called with the static inputs of a spec.
    Function(&'a StaticSpec),
    /// The ELF entry point of a statically linked executable, as Linux
    /// starts a process: the general registers 0, the argument and
    /// environment vectors and an auxiliary vector on the stack, all
    /// static (the strings in the residual's data), and the initial image
    /// of the writable segments static (see [`ProcessImage`]).
    Process(&'a ProcessImage),
    /// `main` of a dynamically linked executable, after the dynamic linker
    /// and the C library's start-up ran: `argc`, `argv` and `envp` static
    /// (the vectors and strings in the residual's data); memory dynamic.
    Main(&'a ProcessImage),
}

/// A command line fixed at specialization time: the argument vector and
/// the environment the extracted program behaves as if started with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcessImage {
    /// The arguments, `argv[0]` first, each without its terminating NUL.
    pub argv: Vec<Vec<u8>>,
    /// The environment: `NAME=VALUE` strings, without NULs.
    pub envp: Vec<Vec<u8>>,
}

/// Why a function could not be specialized. Every message is one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecializeError {
    /// The function could not be decoded.
    #[error(transparent)]
    Decode(#[from] wiper_x86::DecodeError),
    /// The binding-time analysis rejected the function or the spec.
    #[error(transparent)]
    Bta(#[from] wiper_bta::BtaError),
    /// No address below 4 GiB is left after the binary's image for the
    /// residual's data ([`wiper_residual::data_address`]).
    #[error("no room below 4 GiB after the binary's loadable segments for the residual's data")]
    NoRoom,
    /// An instruction or situation the specializer does not handle.
    #[error("unsupported at {address:#x}: {reason}")]
    Unsupported {
        /// The original instruction's address.
        address: u32,
        /// What is not supported.
        reason: String,
    },
    /// The residual program grew past the configured bound.
    #[error("residual code exceeds {limit} instructions (unrolling does not stop; raise --max-residual or make the loop's control dynamic)")]
    TooLarge {
        /// The bound.
        limit: usize,
    },
    /// Inlining one call cost more residual code than a fraction of the
    /// bound allows; the call is then kept as a call (this error shows only
    /// when that is impossible).
    #[error("inlining the call of {callee:#x} costs more than {limit} residual instructions")]
    InlineTooLarge {
        /// The callee's entry.
        callee: u32,
        /// The bound for one inlined call.
        limit: usize,
    },
}

/// Tuning knobs of the specializer.
#[derive(Debug, Clone)]
pub struct Options {
    /// Most residual instructions before giving up.
    pub max_residual: usize,
    /// Z3 timeout per proof, in milliseconds.
    pub proof_timeout_ms: u32,
    /// How many consecutive visits of one program point along a path, each
    /// through a dynamic branch and each differing from the one before in
    /// the same few locations, make those locations generalized
    /// (dynamic) there.
    pub generalize_after: usize,
    /// Most nested inlined calls.
    pub max_inline_depth: usize,
    /// Whether [`Specialization::points`] lists the specialization points
    /// (off by default: printing every point's store costs time and memory
    /// that only `wiper report` needs).
    pub record_points: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_residual: 100_000,
            proof_timeout_ms: 2_000,
            generalize_after: 3,
            max_inline_depth: 48,
            record_points: false,
        }
    }
}

/// Counts reported in the summary line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Instructions of the original function (its CFG).
    pub original_instructions: usize,
    /// Instructions Reduce's synthesis offered.
    pub reduced: usize,
    /// Of those, how many Z3's verdicts proved equivalent to the
    /// specialized formula ([`wiper_synth::Proof::holds`]). Only these are
    /// in the residual: an offered sequence without a proof is replaced by
    /// the fallback, so `reduced > proved` means the synthesizer offered an
    /// unproved sequence.
    pub proved: usize,
    /// Instructions emitted by the fallback (static inputs materialized).
    pub fallbacks: usize,
    /// Materializing instructions.
    pub materialized: usize,
    /// Jumps into the original code where a program point had spent its
    /// budget of variants (see docs/specialization.md).
    pub left: usize,
    /// Specialization points (memo entries).
    pub points: usize,
    /// Restarts after generalizing locations.
    pub restarts: usize,
    /// Locations generalized (made dynamic at a program point) by those
    /// restarts.
    pub generalized: usize,
    /// What the binding-time analysis decided and the online step refined.
    pub bta: BtaStats,
    /// Time spent.
    pub time: Duration,
}

/// How the specializer used the BTA's binding times, in instruction visits
/// (an instruction specialized at several points counts each time) of the
/// final run (see docs/specialization.md).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BtaStats {
    /// (function, context) pairs the BTA analysed, over all runs.
    pub contexts: usize,
    /// Visits of instructions the BTA found Static.
    pub static_: usize,
    /// Visits of instructions the BTA found Dynamic.
    pub dynamic: usize,
    /// Visits of instructions with Lifted parts (or parts of mixed times).
    pub lifted: usize,
    /// Visits in functions the BTA could not analyse.
    pub unanalysed: usize,
    /// Of the Dynamic visits, those emitted without evaluating them.
    pub emitted: usize,
    /// Visits where the online step knew better than the BTA: a Dynamic
    /// instruction whose inputs the store knows, or a Static one that left
    /// residual code (its inputs were generalized).
    pub refined: usize,
}

/// The result of a specialization.
pub struct Specialization {
    /// The residual code.
    pub residual: Residual,
    /// Counts.
    pub stats: Stats,
    /// The specialization points (memo entries) of the final run, in the
    /// order they were created, when [`Options::record_points`] asked for
    /// them (else empty).
    pub points: Vec<PointSummary>,
    /// The BTA's binding time of every instruction of the specialized
    /// function in the context of its entry (the static inputs of the
    /// spec): what the specializer read for its top-level visits (a
    /// recursive call entering it with other static inputs reads its own
    /// context's). `None` when the analysis failed.
    pub entry_times: Option<wiper_bta::InstructionTimes>,
    /// Warnings of meaning about the spec and the function (an integer
    /// used as an address, an input never read, a buffer read past its
    /// end, a function nothing calls, callers passing other constants):
    /// those of the binary first, then those found while specializing, in
    /// the order found. They change nothing else.
    pub warnings: Vec<Warning>,
    /// The return addresses (in the original code) of the calls inlined
    /// in the residual, and of the calls to their own end (`call $+5`,
    /// which the specializer follows): the values the residual writes into
    /// the return address slots of inlined frames, which only original
    /// code running in those frames could return through.
    pub inlined_return_addresses: std::collections::BTreeSet<u32>,
}

/// One specialization point of the final run: a program point (an
/// original address in a function, under a stack of inlined calls) and the
/// static part of the store there, with the residual block the
/// specializer made for it. An original block specialized under several
/// stores has several points (polyvariance); the residual blocks keep
/// their labels through the optimizer, which may merge a block into its
/// only predecessor or drop it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PointSummary {
    /// The point's residual block.
    pub label: Label,
    /// Entry of the function whose code runs at the point.
    pub function: u32,
    /// The original address (a block start of `function`).
    pub address: u32,
    /// Entries of the inlined callees around the point, outermost first
    /// (empty in the specialized function itself).
    pub inlined: Vec<u32>,
    /// The static store on arrival, as [`state::Store::static_summary`]
    /// prints it: `(location, value)` pairs such as `("ecx", "3")`.
    pub statics: Vec<(String, String)>,
}
