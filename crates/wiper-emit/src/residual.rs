//! The residual program: what the specializer hands to the emitter.
//!
//! Blocks are named by [`Label`]s; control between them is a
//! [`Terminator`], so the emitter is free to lay blocks out for
//! fall-through. Every instruction carries an [`Origin`] that traces it back
//! to the original binary.

use iced_x86::{ConditionCode, Instruction, Register};

/// Names a residual block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Label(pub u32);

/// Where a residual instruction came from, for `--emit asm` and debugging.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Origin {
    /// Emitted unchanged (Dynamic) from the original instruction at this
    /// address.
    Original(u32),
    /// Synthesized by Reduce for the instruction at this address, and proved
    /// equivalent by Z3.
    Reduced(u32),
    /// Writes a static value into its machine location because the
    /// instruction at this address (or a call, a return, a memo point) needs
    /// it there.
    Materialized(u32),
    /// Fallback for the instruction at this address: the original
    /// instruction after its static inputs were materialized.
    Fallback(u32),
    /// Glue: a stack-pointer adjustment or control transfer the
    /// specializer added before the instruction at this address.
    Glue(u32),
}

impl Origin {
    /// The original address the instruction traces back to.
    pub fn address(self) -> u32 {
        match self {
            Origin::Original(a)
            | Origin::Reduced(a)
            | Origin::Materialized(a)
            | Origin::Fallback(a)
            | Origin::Glue(a) => a,
        }
    }
}

/// One residual item of a block.
#[derive(Clone, Debug, PartialEq)]
pub enum Item {
    /// A machine instruction. Relative branches between residual blocks are
    /// never items (they are [`Terminator`]s); a near `call` or `jmp` whose
    /// target is an address of the original binary is allowed (it is
    /// re-encoded relative to its new position).
    Instr(Instruction, Origin),
    /// `reg :=` the run-time address of the link-time address `addr`: in a
    /// position-independent executable the load base plus `addr`, otherwise
    /// `addr` itself. Flags are preserved.
    Address {
        /// The register written.
        reg: Register,
        /// The link-time address.
        addr: u32,
        /// Where it came from.
        origin: Origin,
    },
    /// A near call to another residual block (the entry of a specialized
    /// clone of a callee).
    CallLabel(Label, Origin),
}

impl Item {
    /// Where the item came from.
    pub fn origin(&self) -> Origin {
        match self {
            Item::Instr(_, o) | Item::CallLabel(_, o) => *o,
            Item::Address { origin, .. } => *origin,
        }
    }
}

/// How control leaves a residual block.
#[derive(Clone, Debug, PartialEq)]
pub enum Terminator {
    /// The last item leaves (a `ret`, or a jump into the original code).
    Exit,
    /// Continue at a block.
    Jump(Label, Origin),
    /// A conditional branch: `taken` when `cc` holds, else `not_taken`.
    Branch {
        /// The condition (as in `jcc`).
        cc: ConditionCode,
        /// Target when the condition holds.
        taken: Label,
        /// Target otherwise.
        not_taken: Label,
        /// Where it came from.
        origin: Origin,
    },
}

/// A residual block.
#[derive(Clone, Debug, PartialEq)]
pub struct Block {
    /// Its name.
    pub label: Label,
    /// Its straight-line items.
    pub items: Vec<Item>,
    /// How it ends.
    pub terminator: Terminator,
}

/// The residual code of one specialization: blocks reachable from `entry`,
/// plus the static data they use (placed at [`crate::Plan::data_vaddr`]).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Residual {
    /// The block the specialized function starts at.
    pub entry: Option<Label>,
    /// All blocks, in creation order.
    pub blocks: Vec<Block>,
    /// Static data (the `@` buffers of the spec), loaded at
    /// `Plan::data_vaddr`.
    pub data: Vec<u8>,
    /// Whether `edx` is dead at every `ret` of the residual code: no
    /// caller of the specialized function (or of a clone) reads it (the
    /// caller analysis of the decode stage). The optimizer then need not
    /// keep a value in `edx` for the `ret`; otherwise it is live there, as
    /// the high half of a 64-bit result.
    pub edx_dead_at_return: bool,
}
