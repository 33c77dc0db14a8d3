//! Resolving indirect jumps through tables (`switch` statements, computed
//! `goto`s) into their targets, by a value-range analysis rather than by
//! patterns.
//!
//! The jump's target must be a 32-bit word loaded from `table + 4 * u` (plus
//! a constant, or plus the GOT address for PIC tables of offsets), and `u`
//! must have a proven range. The proof comes from the paths that lead to the
//! jump in the function's (partly decoded) CFG: each path is evaluated
//! forward (`eval`), tracking registers and memory cells as linear functions
//! of unknowns (`value`), and the conditional branches it takes bound those
//! unknowns (`range`: `cmp`, `sub` or `test` then `ja`/`jae`/`jb`/`jbe`/`je`,
//! signed or not, on either edge, through copies, added offsets, zero- and
//! sign-extensions, reloads of a memory cell no store may have changed). A
//! zero-extended byte is below 256, `and r, k` at most `k`, `bsf` of a
//! non-zero value below 32, and a byte read from a table at a bounded index
//! one of that table's bytes (`movzx eax, BYTE PTR [eax+T1]; jmp
//! [eax*4+T2]`). `shape` turns the evaluated path into the table.
//!
//! The search (`search`) starts with the jump's own block and extends a path
//! backwards, block by block, only while it does not bound `u`; every
//! predecessor is followed, so the bound holds on every path into the jump
//! (up to [`MAX_BLOCKS`] blocks and [`MAX_PATHS`] paths; a path reaching the
//! function's entry unbounded leaves the jump unresolved). The table is the
//! hull of the ranges of all paths; a path whose range reads entries that are
//! no code of the function is extended in the hope of a tighter bound. A
//! table (of targets or of bytes) that is a data object with a symbol ends
//! with that object ([`within_object`]): Lua's `disptab` of 83 labels is
//! indexed by `i & 0x7f`, glibc's `vfprintf` step tables by a byte.
//!
//! Two facts hold for the whole function rather than one path: registers
//! that have one constant value at a block's start (constant propagation: a
//! GOT or table address kept in a register through a loop), and frame slots
//! written once by `mov [slot], r32` with a constant (`frame`: a spilled GOT
//! or table address reloaded in a loop). A slot counts only when `esp` (or
//! `ebp`) is at a known height at every write into the frame and no frame
//! address at or below it goes into another register: writes through other
//! pointers are taken not to reach it.
//!
//! PIC code forms the table address from a register holding the GOT address
//! (`add edi, [edi+eax*4-0x3c434]; jmp edi`); where neither the path nor
//! those facts show that register's value (a `__x86.get_pc_thunk` call and
//! its `add`), it is taken to hold `_GLOBAL_OFFSET_TABLE_`, as gcc's i386 PIC
//! convention guarantees. Tables are read from read-only segments or
//! `.data.rel.ro` (constant once relocated), and every target must be
//! accepted by the caller (code of the function being decoded), or the jump
//! stays unresolved. Calls are taken to leave `esp` as it was but for their
//! callee's `ret N`.

mod eval;
mod frame;
mod range;
mod search;
mod shape;
mod value;

use iced_x86::Instruction;
use range::Circ;
use wiper_elf::{Binary, Symbol, SymbolKind};

pub(crate) use frame::calls_that_cannot_return;
pub(crate) use search::Graph;
use search::{search, Step};
use shape::{shape, Outcome, Shape};

/// Largest table accepted.
pub const MAX_ENTRIES: u32 = 4096;
/// Most blocks on one path searched backwards from a jump.
pub const MAX_BLOCKS: usize = 12;
/// Most paths evaluated for one jump.
pub const MAX_PATHS: usize = 256;
/// How deep a value may come from another analysis: a table index from a
/// table of bytes, a frame slot's value from the store into it.
const MAX_DEPTH: u32 = 3;

/// A resolved jump table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JumpTable {
    /// Address of the indirect jump.
    pub jump: u32,
    /// Address of the first table entry.
    pub table: u32,
    /// The address each entry is relative to (the GOT for PIC tables); `None` when
    /// entries are absolute addresses.
    pub relative_to: Option<u32>,
    /// Target of each entry, in table order.
    pub targets: Vec<u32>,
}

/// Resolves the indirect jump that ends block `jump_block` of `graph`, when
/// every path into it bounds its index; `accept` says which targets may be
/// code of the function.
pub(crate) fn resolve(
    graph: &Graph<'_>,
    jump_block: u32,
    accept: &dyn Fn(u32) -> bool,
) -> Option<JumpTable> {
    let binary = graph.binary;
    let jump = *graph.blocks.get(&jump_block)?.instructions.last()?;
    let stop = graph.blocks[&jump_block].instructions.len() - 1;
    let judge = |ev: &eval::Eval<'_>| match shape(ev, &jump, MAX_DEPTH) {
        Outcome::Infeasible => Step::Infeasible,
        // Too loose a bound (a byte index, where a longer path compares
        // it) reads entries that are no code: a longer path may do better.
        Outcome::Bounded(s) if table(binary, &jump, s, accept).is_none() => Step::Longer,
        Outcome::Bounded(s) => Step::Found(s),
        Outcome::Unbounded => Step::Longer,
        Outcome::NotTable => Step::Fail,
    };
    let found = search(graph, jump_block, stop, MAX_DEPTH, &judge, &Shape::merge)?;
    table(binary, &jump, found, accept)
}

/// The table of `shape`, when it is small enough, readable and every target
/// is accepted.
fn table(
    binary: &Binary,
    jump: &Instruction,
    shape: Shape,
    accept: &dyn Fn(u32) -> bool,
) -> Option<JumpTable> {
    let range = within_object(binary, shape.table, 4, shape.range);
    let count = range.len();
    if count > u64::from(MAX_ENTRIES) {
        return None;
    }
    let first = shape
        .table
        .wrapping_add((range.start() as u32).wrapping_mul(4));
    let mut targets = Vec::with_capacity(count as usize);
    for i in 0..count as u32 {
        let t = read_constant(binary, first.wrapping_add(4 * i), 4)?
            .wrapping_add(shape.plus.unwrap_or(0));
        if !accept(t) {
            return None;
        }
        targets.push(t);
    }
    Some(JumpTable {
        jump: jump.ip32(),
        table: first,
        relative_to: shape.plus,
        targets,
    })
}

/// The indexes `i` of `range` at which the entry of `size` bytes at
/// `table + size * i` lies in the data object (an `STT_OBJECT` symbol with a
/// size) that holds `table`, the address the code indexes: a C program reads no
/// array outside its bounds, so a table that is an object of its own (a
/// `static const void *disptab[]` of labels, `vfprintf`'s `step0_jumps`)
/// ends with it, whatever bound the code checks (`i & 0x7f` on 83 opcodes).
/// All of `range` unless one object holds both `table` and the first entry
/// of `range`: gcc's `switch` tables have no symbol, and the address the
/// code indexes of one biased by its smallest case may fall in the object
/// before it.
pub(super) fn within_object(binary: &Binary, table: u32, size: u32, range: Circ) -> Circ {
    let first = table.wrapping_add(size.wrapping_mul(range.start() as u32));
    let holds = |s: &Symbol, a: u32| a.wrapping_sub(s.addr) < s.size;
    let object = binary.symbols.iter().find(|s| {
        s.kind == SymbolKind::Object && s.size >= size && holds(s, table) && holds(s, first)
    });
    let Some(o) = object else { return range };
    let below = (table - o.addr) / size;
    let above = (o.addr + o.size - table) / size;
    if above == 0 {
        return range;
    }
    let inside = Circ::interval(u64::from(below.wrapping_neg()), u64::from(above - 1), 32);
    range.intersect(inside)
}

/// `size` bytes at `addr` as a little-endian number, when they are constant:
/// in a read-only segment, in writable data no code writes
/// ([`Binary::is_constant`]) or in `.data.rel.ro`.
fn read_constant(binary: &Binary, addr: u32, size: u32) -> Option<u32> {
    let constant = |a: u32| {
        binary.is_constant(a)
            || binary
                .section(".data.rel.ro")
                .is_some_and(|s| a >= s.addr && a - s.addr < s.size)
    };
    if !constant(addr) || !constant(addr.wrapping_add(size - 1)) {
        return None;
    }
    let bytes = binary.read(addr, size)?;
    let mut word = [0u8; 4];
    word[..bytes.len()].copy_from_slice(&bytes);
    Some(u32::from_le_bytes(word))
}
