//! The residual program: what the specializer produces, the optimizer
//! rewrites and the emitter encodes.
//!
//! Blocks are named by [`Label`]s; control between them is a
//! [`Terminator`], so the emitter is free to lay blocks out for
//! fall-through. Every instruction carries an [`Origin`] that traces it back
//! to the original binary. [`Residual::verify`] checks the shape every
//! later stage relies on; [`data_address`] is where the residual's static
//! data will be in the output, decided before specialization because the
//! residual code refers to it.

mod verify;

use iced_x86::{ConditionCode, Instruction, Register};
use wiper_elf::Binary;

pub use verify::ResidualError;

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

    /// Its kind in one word: `original`, `reduced`, `materialized`,
    /// `fallback` or `glue` (the JSON listings' `origin.kind`).
    pub fn kind(self) -> &'static str {
        match self {
            Origin::Original(_) => "original",
            Origin::Reduced(_) => "reduced",
            Origin::Materialized(_) => "materialized",
            Origin::Fallback(_) => "fallback",
            Origin::Glue(_) => "glue",
        }
    }
}

/// One residual item of a block.
#[derive(Clone, Debug, PartialEq)]
pub enum Item {
    /// A machine instruction. Relative branches between residual blocks are
    /// never items (they are [`Terminator`]s); a near `call`, `jmp` or
    /// conditional branch whose target is an address of the original binary
    /// is allowed (it is re-encoded relative to its new position).
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
/// plus the static data they use (placed at [`Residual::data_vaddr`]).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Residual {
    /// The block the specialized function starts at.
    pub entry: Option<Label>,
    /// All blocks, in creation order.
    pub blocks: Vec<Block>,
    /// Static data (the `@` buffers of the spec), loaded at `data_vaddr`.
    pub data: Vec<u8>,
    /// The link-time address the code assumes `data` is at: the
    /// [`data_address`] of the binary it was specialized from (0 when
    /// `data` is empty and nothing refers to it).
    pub data_vaddr: u32,
    /// Whether `edx` is dead at every `ret` of the residual code: no
    /// caller of the specialized function (or of a clone) reads it (the
    /// caller analysis of the decode stage). The optimizer then need not
    /// keep a value in `edx` for the `ret`; otherwise it is live there, as
    /// the high half of a 64-bit result.
    pub edx_dead_at_return: bool,
}

impl Block {
    /// Every label the block refers to: called blocks (in item order), then
    /// the terminator's targets (`taken` before `not_taken`).
    pub fn successors(&self) -> Vec<Label> {
        let mut out: Vec<Label> = self
            .items
            .iter()
            .filter_map(|i| match i {
                Item::CallLabel(l, _) => Some(*l),
                _ => None,
            })
            .collect();
        out.extend(self.terminator.targets());
        out
    }
}

impl Terminator {
    /// The blocks control may go to next: none for [`Terminator::Exit`],
    /// the target of a jump, `taken` then `not_taken` of a branch.
    pub fn targets(&self) -> Vec<Label> {
        match self {
            Terminator::Exit => Vec::new(),
            Terminator::Jump(l, _) => vec![*l],
            Terminator::Branch {
                taken, not_taken, ..
            } => vec![*taken, *not_taken],
        }
    }
}

impl Residual {
    /// The block labelled `label`, if there is one.
    pub fn block(&self, label: Label) -> Option<&Block> {
        self.blocks.iter().find(|b| b.label == label)
    }

    /// Items in all blocks.
    pub fn item_count(&self) -> usize {
        self.blocks.iter().map(|b| b.items.len()).sum()
    }
}

/// Page size of the i386 targets: segment addresses and file offsets agree
/// modulo it.
pub const PAGE_SIZE: u32 = 0x1000;

/// Where the residual's static data goes in the output: the first page after
/// the highest end (memory size, so `.bss` is never overlapped) of the
/// binary's loadable segments; the emitter's new segment starts there. `None`
/// when that page is not below 4 GiB, or the binary has no loadable segment.
pub fn data_address(binary: &Binary) -> Option<u32> {
    let end = binary
        .segments
        .iter()
        .map(|s| u64::from(s.vaddr) + u64::from(s.mem_size))
        .max()?;
    let page = u64::from(PAGE_SIZE);
    u32::try_from((end + page - 1) & !(page - 1)).ok()
}

impl std::fmt::Display for Label {
    /// `L3`, as listings print block labels.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "L{}", self.0)
    }
}

impl std::fmt::Display for Origin {
    /// The listing's comment for an instruction: `from 0x8049abc`, `reduced
    /// from 0x...`, `materialized for 0x...`, `fallback 0x...`, `glue 0x...`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Origin::Original(a) => write!(f, "from {a:#x}"),
            Origin::Reduced(a) => write!(f, "reduced from {a:#x}"),
            Origin::Materialized(a) => write!(f, "materialized for {a:#x}"),
            Origin::Fallback(a) => write!(f, "fallback {a:#x}"),
            Origin::Glue(a) => write!(f, "glue {a:#x}"),
        }
    }
}

impl std::fmt::Display for Item {
    /// An instruction in iced's Intel syntax; `mov eax,&0x804c000` for an
    /// address item; `call L3` for a call to a residual block.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Item::Instr(ins, _) => write!(f, "{ins}"),
            Item::Address { reg, addr, .. } => {
                write!(f, "mov {},&{addr:#x}", format!("{reg:?}").to_lowercase())
            }
            Item::CallLabel(l, _) => write!(f, "call {l}"),
        }
    }
}

impl std::fmt::Display for Terminator {
    /// `exit`, `jmp L1`, or `je L1 else L2`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Terminator::Exit => write!(f, "exit"),
            Terminator::Jump(l, _) => write!(f, "jmp {l}"),
            Terminator::Branch {
                cc,
                taken,
                not_taken,
                ..
            } => write!(f, "j{cc:?} {taken} else {not_taken}"),
        }
    }
}

impl std::fmt::Display for Residual {
    /// The blocks in order: a `L3:` line, an indented line per item, and the
    /// terminator; no addresses (the emitter's listing has those).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for block in &self.blocks {
            writeln!(f, "{}:", block.label)?;
            for item in &block.items {
                writeln!(f, "  {item}")?;
            }
            writeln!(f, "  {}", block.terminator)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_goes_to_the_page_after_the_highest_segment_end() {
        let binary = Binary::open(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/bin/power-O2"),
        )
        .expect("testdata binary");
        let end = binary
            .segments
            .iter()
            .map(|s| s.vaddr + s.mem_size)
            .max()
            .unwrap();
        let at = data_address(&binary).expect("room");
        assert_eq!(at % PAGE_SIZE, 0);
        assert!(at >= end && at - end < PAGE_SIZE, "{at:#x} after {end:#x}");
    }

    #[test]
    fn a_residual_prints_as_a_listing() {
        let ins = Instruction::with2(iced_x86::Code::Mov_r32_imm32, Register::EAX, 5).unwrap();
        let r = Residual {
            entry: Some(Label(0)),
            blocks: vec![
                Block {
                    label: Label(0),
                    items: vec![
                        Item::Instr(ins, Origin::Original(0x10)),
                        Item::Address {
                            reg: Register::ECX,
                            addr: 0x804c000,
                            origin: Origin::Glue(0x10),
                        },
                        Item::CallLabel(Label(1), Origin::Glue(0x10)),
                    ],
                    terminator: Terminator::Branch {
                        cc: ConditionCode::ne,
                        taken: Label(0),
                        not_taken: Label(1),
                        origin: Origin::Glue(0x10),
                    },
                },
                Block {
                    label: Label(1),
                    items: vec![],
                    terminator: Terminator::Exit,
                },
            ],
            ..Residual::default()
        };
        assert_eq!(
            r.to_string(),
            "L0:\n  mov eax,5\n  mov ecx,&0x804c000\n  call L1\n  jne L0 else L1\nL1:\n  exit\n"
        );
        assert_eq!(r.block(Label(1)).map(|b| b.label), Some(Label(1)));
        assert_eq!(r.blocks[0].successors(), vec![Label(1), Label(0), Label(1)]);
    }
}
