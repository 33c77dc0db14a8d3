//! Decoupled sequences: [`Part`]s (single-assignment instructions with their
//! formulas), [`Lifted`] instructions, and the footprint view derived from
//! the formulas.

use std::collections::BTreeSet;

use iced_x86::Instruction;
use wiper_qfbv::{ExprId, ExprPool};

use crate::loc::Loc;

/// The value an [`Effect`] assigns.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Value {
    /// A formula over the location variables ([`crate::loc_var`]): the
    /// location's new value, computed from the state before the part.
    Expr(ExprId),
    /// The Intel manual leaves the location undefined on every input (flags
    /// only). A flag undefined on some inputs only is an [`Value::Expr`] that
    /// reaches an [`crate::undefined_var`] on those inputs.
    Undefined,
}

/// One assignment `dst := value`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct Effect {
    /// The assigned location.
    pub dst: Loc,
    /// Its new value.
    pub value: Value,
}

/// Why a part stops ordinary execution: instructions whose effect lies outside
/// the modelled machine state. Later stages must treat a barrier as reading
/// and writing everything and never evaluate across it.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Barrier {
    /// `int 0x80`: a Linux system call (reads registers and memory, writes
    /// `eax` and memory, may not return).
    Syscall,
    /// `hlt` (privileged: faults in user mode), `ud2` (an invalid opcode)
    /// or `int3` (a breakpoint): the process stops with a signal.
    Halt,
    /// `mov fs, r/m` or `mov gs, r/m`: the segment selects another base
    /// from now on (the C library installing its thread pointer after
    /// `set_thread_area`); memory relative to the old base is not the
    /// new one's.
    SegmentBase,
}

/// What wiper knows of an instruction it has no formulas for (x87, SSE,
/// `cpuid`, ...): an *opaque* part. Its footprint comes from iced's
/// instruction info: the formulas of the values it reads are
/// [`Opaque::inputs`]; each location it writes gets an effect whose formula
/// reaches a fresh *opaque-value* variable (`eax'`, `zf'`, `fpu'`, `mem0_64'`,
/// see [`crate::is_opaque_var`]) for the value the processor computes, so
/// that the bits it keeps (the upper half of `eax` under `fnstsw ax`) and
/// the addresses it stores at are formulas like any other. It is never
/// evaluated ([`crate::execute`] refuses it); later stages emit it as it is.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Opaque {
    /// The values the instruction reads, as formulas over the state before
    /// it: registers (also those it writes only in part or conditionally),
    /// flags, `fpu`, and a `loadN(mem, address)` per memory operand it reads
    /// (also those it writes only in part or conditionally), in chunks of
    /// at most 8 bytes.
    pub inputs: Vec<ExprId>,
}

/// One single-assignment instruction of a decoupled sequence: its effects are
/// a parallel assignment (all right-hand sides read the state before the
/// part). It assigns one location, or one result together with the flags
/// computed from it.
#[derive(Clone, Debug, PartialEq)]
pub struct Part {
    /// Address of the original instruction.
    pub origin: u32,
    /// Position in the original's sequence (0-based).
    pub index: u8,
    /// Intel syntax as objdump prints it; temporaries appear as `t0`, `t1`, …
    /// Parts that are no IA-32 instruction use the pseudo-instructions listed
    /// in `docs/semantics.md`.
    pub text: String,
    /// The IA-32 instruction this part is, when it is one (for re-encoding).
    pub native: Option<Instruction>,
    /// The assignments.
    pub effects: Vec<Effect>,
    /// When this 1-bit formula (over the state before the part) is 1, the
    /// part raises a divide error (#DE) instead of taking effect. Only the
    /// first part of a `div`/`idiv` sequence has one.
    pub fault: Option<ExprId>,
    /// Set when the part is a [`Barrier`] (it then has no effects).
    pub barrier: Option<Barrier>,
    /// Set when the part is an instruction without formulas ([`Opaque`]).
    pub opaque: Option<Opaque>,
}

/// Locations of the free variables of `roots` (undefined-value variables are
/// not locations and are skipped).
fn vars_of(pool: &ExprPool, roots: impl IntoIterator<Item = ExprId>) -> BTreeSet<Loc> {
    let roots: Vec<ExprId> = roots.into_iter().collect();
    pool.subterms(&roots)
        .into_iter()
        .filter_map(|e| pool.as_var(e))
        .filter_map(|v| Loc::of_var(pool, v))
        .collect()
}

impl Part {
    /// Every formula of the part: the effects' values, the fault condition
    /// and an opaque part's inputs.
    pub fn formulas(&self) -> Vec<ExprId> {
        let values = self.effects.iter().filter_map(|e| match e.value {
            Value::Expr(x) => Some(x),
            Value::Undefined => None,
        });
        let inputs = self.opaque.iter().flat_map(|o| o.inputs.iter().copied());
        values.chain(self.fault).chain(inputs).collect()
    }

    /// The locations the part reads: the free location variables of its
    /// [`Part::formulas`] (effects, fault condition, opaque inputs). A store
    /// reads `mem` (the rest of memory flows through), a write to `al` reads
    /// `eax` (the other 24 bits flow through).
    pub fn reads(&self, pool: &ExprPool) -> BTreeSet<Loc> {
        vars_of(pool, self.formulas())
    }

    /// The locations the part assigns (including those it makes undefined).
    pub fn writes(&self) -> BTreeSet<Loc> {
        self.effects.iter().map(|e| e.dst).collect()
    }
}

/// An instruction and its decoupled sequence.
#[derive(Clone, Debug, PartialEq)]
pub struct Lifted {
    /// The instruction as decoded.
    pub original: Instruction,
    /// Its parts, in execution order; empty for `nop` forms.
    pub parts: Vec<Part>,
}

impl Lifted {
    /// The locations the sequence reads before writing them (temporaries
    /// excluded): its upward-exposed uses.
    pub fn reads(&self, pool: &ExprPool) -> BTreeSet<Loc> {
        let mut written = BTreeSet::new();
        let mut reads = BTreeSet::new();
        for p in &self.parts {
            reads.extend(p.reads(pool).difference(&written).copied());
            written.extend(p.writes());
        }
        reads.retain(|l| !matches!(l, Loc::Temp(_)));
        reads
    }

    /// The locations the sequence assigns, temporaries excluded.
    pub fn writes(&self) -> BTreeSet<Loc> {
        let mut w: BTreeSet<Loc> = self.parts.iter().flat_map(Part::writes).collect();
        w.retain(|l| !matches!(l, Loc::Temp(_)));
        w
    }

    /// Whether the sequence is one iteration of a `rep`/`repe`/`repne` string
    /// instruction: its last part sends control back to the instruction
    /// itself while iterations remain, so it is a loop in the CFG sense.
    pub fn is_rep_loop(&self) -> bool {
        let i = &self.original;
        i.is_string_instruction()
            && (i.has_rep_prefix() || i.has_repe_prefix() || i.has_repne_prefix())
    }

    /// The barrier the instruction is, if any.
    pub fn barrier(&self) -> Option<Barrier> {
        self.parts.iter().find_map(|p| p.barrier)
    }

    /// Whether the instruction is opaque (lifted without formulas for its
    /// results: one [`Opaque`] part).
    pub fn is_opaque(&self) -> bool {
        self.parts.iter().any(|p| p.opaque.is_some())
    }
}
