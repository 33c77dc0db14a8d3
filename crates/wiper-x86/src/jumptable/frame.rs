//! The function's stack frame, as far as jump tables need it: the height of
//! `esp` (and of `ebp` where it is a frame pointer) at the start of each
//! block, every write into the frame, and which frame slots hold one value
//! for the whole function. gcc spills the address of a table (or the GOT
//! address) into such a slot once and reloads it in a loop
//! (`mov ebx,[ebp-0x8d0]; ...; jmp [ebx+eax*4-0x21f4]`).
//!
//! Heights are relative to `esp` at the function's entry. A call is taken to
//! leave `esp` as it was but for the `ret N` of its callee (the caller
//! supplies how many bytes each call pops, `None` when unknown). Writes
//! through registers other than `esp` and `ebp` are taken not to reach a
//! slot whose address the function never computes: a slot is invariant only
//! when it lies below every frame address the function puts into another
//! register or indexes (arrays grow upwards).
//!
//! Below a dynamic allocation (`sub esp, reg`: `alloca`, a variable-length
//! array) `esp` is only known to be at or below a height
//! ([`Height::Dynamic`]); a write through it reaches no slot above that
//! height plus its displacement. gcc keeps a frame pointer in such a
//! function and addresses its own objects through `ebp`, so an address
//! formed from `esp` there (`lea esi,[esp+0xf]`, the block allocated) is
//! taken to point into an allocated block or the outgoing arguments: below
//! the highest height at which the function allocates. Without a frame
//! pointer such an address leaves every slot unknown.

use std::collections::{BTreeMap, BTreeSet};

use iced_x86::{
    FlowControl, Instruction, InstructionInfoFactory, Mnemonic, OpAccess, OpKind, Register,
};

use crate::Block;

/// Where a register points, relative to `esp` at the function's entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Height {
    /// Not into the frame (`ebp` used as an ordinary register, or the
    /// caller's frame pointer).
    General,
    At(i32),
    /// Into the frame at or below this height, where some path made a
    /// dynamic allocation (`sub esp, reg`: `alloca`, a variable-length
    /// array) and every other path is at or below it too.
    Dynamic(i32),
    /// Into the frame, but not at the same place on every path.
    Unknown,
}

impl Height {
    fn add(self, d: Option<i32>) -> Height {
        match (self, d) {
            (Height::At(h), Some(d)) => Height::At(h.wrapping_add(d)),
            (Height::Dynamic(h), Some(d)) => Height::Dynamic(h.wrapping_add(d)),
            (Height::General, _) => Height::General,
            _ => Height::Unknown,
        }
    }

    /// The height at a block's start, `self`, once `incoming` reaches it
    /// too. Below an allocation it may rise once, from an exact height; a
    /// height that would rise again (a loop that pops more than it pushes)
    /// is unknown, so that the fixpoint ends.
    fn merge(self, incoming: Height) -> Height {
        match (self, incoming) {
            _ if self == incoming => self,
            (Height::At(a), Height::Dynamic(b)) => Height::Dynamic(a.max(b)),
            (Height::Dynamic(a), Height::At(b) | Height::Dynamic(b)) if b <= a => self,
            _ => Height::Unknown,
        }
    }

    /// `esp` after `sub esp, reg`: below where it was.
    fn allocate(self) -> Height {
        match self {
            Height::At(h) | Height::Dynamic(h) => Height::Dynamic(h),
            _ => Height::Unknown,
        }
    }

    /// The height, when known.
    pub fn known(self) -> Option<i32> {
        match self {
            Height::At(h) => Some(h),
            _ => None,
        }
    }
}

/// Heights of `esp` and `ebp`.
pub(crate) type Heights = (Height, Height);

/// One write into the frame.
#[derive(Debug, Clone, Copy)]
struct Write {
    offset: i32,
    size: u32,
    /// Block and index of the instruction.
    at: (u32, usize),
    /// The register a `mov [slot], r32` stores.
    source: Option<Register>,
}

/// The calls among `blocks` (by address) after which the code that follows
/// cannot run: the block the call falls through to is also entered by
/// another edge, at another stack height than the call leaves. gcc knew the
/// callee does not return there (`__libc_message` in glibc's malloc: no
/// `add esp, 16` after the call, and the next instruction starts a block
/// of another path). Heights come from the other edges only; `pops` says
/// how many bytes the call at an address pops on return.
pub(crate) fn calls_that_cannot_return(
    blocks: &BTreeMap<u32, Block>,
    entry: u32,
    pops: &dyn Fn(u32) -> Option<u32>,
) -> BTreeSet<u32> {
    let call_of = |b: &Block| {
        let last = b.instructions.last()?;
        let falls = b.successors.iter().find_map(|s| match s {
            crate::Successor::FallThrough(f) => Some(*f),
            _ => None,
        })?;
        (last.flow_control() == FlowControl::Call
            || last.flow_control() == FlowControl::IndirectCall)
            .then_some((last.ip32(), falls))
    };
    // Blocks entered both by a call's fall-through and by another edge.
    let mut entries: BTreeMap<u32, usize> = BTreeMap::new();
    for b in blocks.values() {
        for t in b.local_successors() {
            *entries.entry(t).or_default() += 1;
        }
    }
    let shared = |t: u32| entries.get(&t).is_some_and(|&n| n > 1) || t == entry;
    let mut heights: BTreeMap<u32, Height> = BTreeMap::new();
    let mut work = vec![(entry, Height::At(0), Height::General)];
    while let Some((start, esp, ebp)) = work.pop() {
        let Some(block) = blocks.get(&start) else {
            continue;
        };
        let esp = match heights.get(&start) {
            None => esp,
            Some(&old) if old.merge(esp) == old => continue,
            Some(&old) => old.merge(esp),
        };
        heights.insert(start, esp);
        let mut h = (esp, ebp);
        for ins in &block.instructions {
            h = height_after(ins, h, pops);
        }
        let skipped = call_of(block).map(|(_, f)| f).filter(|&f| shared(f));
        for s in block.local_successors().filter(|&s| Some(s) != skipped) {
            work.push((s, h.0, h.1));
        }
    }
    let mut cannot = BTreeSet::new();
    for block in blocks.values() {
        let Some((call, falls)) = call_of(block).filter(|&(_, f)| shared(f)) else {
            continue;
        };
        let (Some(&start), Some(&there)) = (heights.get(&block.start), heights.get(&falls)) else {
            continue;
        };
        let mut h = (start, Height::General);
        for ins in &block.instructions {
            h = height_after(ins, h, pops);
        }
        if let (Some(after), Some(there)) = (h.0.known(), there.known()) {
            if after != there {
                cannot.insert(call);
            }
        }
    }
    cannot
}

/// What the function does to its stack frame.
pub(crate) struct Frame {
    heights: BTreeMap<u32, Heights>,
    writes: Vec<Write>,
    /// A write or `esp` at an unknown height: no slot is invariant.
    unknown: bool,
    /// The lowest frame offset whose address goes into another register (or
    /// is indexed).
    escape: Option<i32>,
    /// The highest frame offset (exclusive) that a write through `esp`
    /// below a dynamic allocation may reach.
    dynamic: Option<i32>,
    /// The highest height at which the function allocates dynamically.
    allocation: Option<i32>,
    /// Whether an address formed from `esp` below a dynamic allocation
    /// goes into another register: it may reach anything below
    /// [`Frame::allocation`].
    dynamic_escape: bool,
}

impl Frame {
    /// The frame of the function `blocks`, entered at `entry`; `pops` says
    /// how many bytes the call at an address pops on return.
    pub fn new(
        blocks: &BTreeMap<u32, Block>,
        entry: u32,
        pops: &dyn Fn(u32) -> Option<u32>,
    ) -> Frame {
        let mut frame = Frame {
            heights: BTreeMap::new(),
            writes: Vec::new(),
            unknown: false,
            escape: None,
            dynamic: None,
            allocation: None,
            dynamic_escape: false,
        };
        let mut work = vec![(entry, (Height::At(0), Height::General))];
        while let Some((start, incoming)) = work.pop() {
            let Some(block) = blocks.get(&start) else {
                continue;
            };
            let merged = match frame.heights.get(&start) {
                None => incoming,
                Some(&old) => {
                    let m = (old.0.merge(incoming.0), old.1.merge(incoming.1));
                    if m == old {
                        continue;
                    }
                    m
                }
            };
            frame.heights.insert(start, merged);
            let mut h = merged;
            for ins in &block.instructions {
                h = height_after(ins, h, pops);
            }
            for s in block.local_successors() {
                work.push((s, h));
            }
        }
        let mut info = InstructionInfoFactory::new();
        for block in blocks.values() {
            let mut h = frame.heights(block.start);
            for (i, ins) in block.instructions.iter().enumerate() {
                frame.record(&mut info, ins, (block.start, i), h);
                h = height_after(ins, h, pops);
            }
        }
        frame
    }

    /// Heights at the start of the block at `start`.
    pub fn heights(&self, start: u32) -> Heights {
        self.heights
            .get(&start)
            .copied()
            .unwrap_or((Height::Unknown, Height::Unknown))
    }

    /// Records the frame writes and escapes of `ins`, at `h`.
    fn record(
        &mut self,
        info: &mut InstructionInfoFactory,
        ins: &Instruction,
        at: (u32, usize),
        h: Heights,
    ) {
        let frame_base = |r: Register| match r {
            Register::ESP => h.0,
            Register::EBP => h.1,
            _ => Height::General,
        };
        // A frame address into another register or memory: `lea eax,
        // [esp+0x10]`, `mov eax, ebp`, `push esp`.
        let is_frame_register = |k: u32| {
            ins.op_kind(k) == OpKind::Register
                && matches!(ins.op_register(k), Register::ESP | Register::EBP)
        };
        if ins.mnemonic() == Mnemonic::Sub
            && ins.op0_kind() == OpKind::Register
            && ins.op0_register() == Register::ESP
            && immediate(ins).is_none()
        {
            self.allocate_at(h.0);
        }
        let escape = match ins.mnemonic() {
            Mnemonic::Lea if !is_frame_register(0) => {
                frame_base(ins.memory_base()).add(Some(ins.memory_displacement32() as i32))
            }
            Mnemonic::Lea => Height::General,
            Mnemonic::Push if is_frame_register(0) => frame_base(ins.op0_register()),
            // Updating `esp` or `ebp` themselves is followed by the heights.
            _ if ins.op_count() == 0 || is_frame_register(0) => Height::General,
            _ => (1..ins.op_count())
                .filter(|&k| is_frame_register(k))
                .map(|k| frame_base(ins.op_register(k)))
                .find(|b| *b != Height::General)
                .unwrap_or(Height::General),
        };
        match escape {
            Height::At(o) => self.escape_at(o),
            // gcc keeps a frame pointer in a function that allocates
            // dynamically and addresses its own objects through it: an
            // address from `esp` below an allocation points into the block
            // allocated or the outgoing arguments below it.
            Height::Dynamic(_) if matches!(h.1, Height::At(_)) => self.dynamic_escape = true,
            Height::Dynamic(_) | Height::Unknown => self.unknown = true,
            Height::General => {}
        }
        for m in info.info(ins).used_memory() {
            let writes = matches!(
                m.access(),
                OpAccess::Write
                    | OpAccess::ReadWrite
                    | OpAccess::CondWrite
                    | OpAccess::ReadCondWrite
            );
            let offset = match frame_base(m.base()) {
                Height::General => continue,
                Height::Dynamic(hb) if writes && m.index() == Register::None => {
                    let end = hb.wrapping_add(m.displacement() as i32);
                    self.dynamic_below(end.wrapping_add(m.memory_size().size() as i32));
                    continue;
                }
                Height::Dynamic(_) | Height::Unknown => {
                    self.unknown |= writes;
                    continue;
                }
                Height::At(hb) => hb.wrapping_add(m.displacement() as i32),
            };
            if m.index() != Register::None {
                self.escape_at(offset);
            } else if writes {
                let source = (ins.mnemonic() == Mnemonic::Mov
                    && ins.op1_kind() == OpKind::Register
                    && ins.op1_register().size() == 4)
                    .then(|| ins.op1_register());
                self.writes.push(Write {
                    offset,
                    size: m.memory_size().size() as u32,
                    at,
                    source,
                });
            }
        }
    }

    fn escape_at(&mut self, offset: i32) {
        self.escape = Some(self.escape.map_or(offset, |e| e.min(offset)));
    }

    fn dynamic_below(&mut self, end: i32) {
        self.dynamic = Some(self.dynamic.map_or(end, |d| d.max(end)));
    }

    /// Records a dynamic allocation (`sub esp, reg`) at `h`.
    fn allocate_at(&mut self, h: Height) {
        if let Height::At(top) | Height::Dynamic(top) = h {
            self.allocation = Some(self.allocation.map_or(top, |a| a.max(top)));
        }
    }

    /// The one instruction that writes the 4-byte slot at `offset`, as
    /// `mov [slot], r32`: its block, index and `r32`; `None` unless the slot
    /// holds one value for the whole function.
    pub fn invariant_store(&self, offset: i32) -> Option<((u32, usize), Register)> {
        let (offset, end) = (i64::from(offset), i64::from(offset) + 4);
        if self.unknown
            || self.escape.is_some_and(|e| i64::from(e) < end)
            || self.dynamic.is_some_and(|d| offset < i64::from(d))
            || (self.dynamic_escape && self.allocation.is_some_and(|a| offset < i64::from(a)))
        {
            return None;
        }
        let mut overlapping = self.writes.iter().filter(|w| {
            i64::from(w.offset) < end && offset < i64::from(w.offset) + i64::from(w.size)
        });
        let only = overlapping.next()?;
        if overlapping.next().is_some() || i64::from(only.offset) != offset || only.size != 4 {
            return None;
        }
        Some((only.at, only.source?))
    }
}

/// The immediate second operand of `ins`, if it has one.
fn immediate(ins: &Instruction) -> Option<i32> {
    matches!(
        ins.op1_kind(),
        OpKind::Immediate8 | OpKind::Immediate8to32 | OpKind::Immediate32
    )
    .then(|| ins.immediate(1) as i32)
}

/// Heights after `ins`.
fn height_after(
    ins: &Instruction,
    (esp, ebp): Heights,
    pops: &dyn Fn(u32) -> Option<u32>,
) -> Heights {
    // Only an immediate second operand moves the height by a known amount
    // (`sub esp,[mem]` or `sub esp,eax` allocates dynamically).
    let imm = || immediate(ins);
    let dest =
        (ins.op_count() > 0 && ins.op0_kind() == OpKind::Register).then(|| ins.op0_register());
    let source =
        (ins.op_count() > 1 && ins.op1_kind() == OpKind::Register).then(|| ins.op1_register());
    match (ins.mnemonic(), dest) {
        (Mnemonic::Push, _) => (esp.add(Some(-4)), ebp),
        (Mnemonic::Pop, Some(Register::EBP)) => (esp.add(Some(4)), Height::General),
        (Mnemonic::Pop, Some(Register::ESP)) => (Height::Unknown, ebp),
        (Mnemonic::Pop, _) => (esp.add(Some(4)), ebp),
        (Mnemonic::Sub, Some(Register::ESP)) => match imm() {
            Some(k) => (esp.add(Some(k.wrapping_neg())), ebp),
            None => (esp.allocate(), ebp),
        },
        (Mnemonic::Add, Some(Register::ESP)) => (esp.add(imm()), ebp),
        (Mnemonic::Lea, Some(r @ (Register::ESP | Register::EBP))) => {
            let frame = |r: Register| match r {
                Register::ESP => esp,
                Register::EBP => ebp,
                _ => Height::General,
            };
            let base = match (ins.memory_base(), ins.memory_index()) {
                (b, Register::None) => frame(b),
                (b, i) if frame(b) == Height::General && frame(i) == Height::General => {
                    Height::General
                }
                _ => Height::Unknown,
            };
            // `lea ebp, [eax*4-0xc]` makes `ebp` an ordinary register;
            // `esp` computed from one (`lea esp, [ecx-0x4]`) is unknown.
            let base = match base {
                Height::General if r == Register::ESP => Height::Unknown,
                b => b,
            };
            let v = base.add(Some(ins.memory_displacement32() as i32));
            if r == Register::ESP {
                (v, ebp)
            } else {
                (esp, v)
            }
        }
        (Mnemonic::Mov, Some(Register::EBP)) if source == Some(Register::ESP) => (esp, esp),
        (Mnemonic::Mov, Some(Register::ESP)) if source == Some(Register::EBP) => (ebp, ebp),
        (Mnemonic::Leave, _) => (ebp.add(Some(4)), Height::General),
        _ if matches!(
            ins.flow_control(),
            FlowControl::Call | FlowControl::IndirectCall
        ) =>
        {
            (esp.add(pops(ins.ip32()).map(|p| p as i32)), ebp)
        }
        (_, Some(Register::ESP)) => (Height::Unknown, ebp),
        (_, Some(Register::EBP)) => (esp, Height::General),
        _ => (esp, ebp),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use iced_x86::{Decoder, DecoderOptions};

    use super::{Frame, Height};
    use crate::{Block, Successor};

    /// Blocks decoded from `(start, bytes, successors)`.
    fn blocks(code: &[(u32, &[u8], Vec<Successor>)]) -> BTreeMap<u32, Block> {
        code.iter()
            .map(|(start, bytes, successors)| {
                let decoder = Decoder::with_ip(32, bytes, u64::from(*start), DecoderOptions::NONE);
                let block = Block {
                    start: *start,
                    instructions: decoder.into_iter().collect(),
                    successors: successors.clone(),
                    jump_table: None,
                };
                (*start, block)
            })
            .collect()
    }

    fn frame(code: &[(u32, &[u8], Vec<Successor>)]) -> (Frame, BTreeMap<u32, Block>) {
        let b = blocks(code);
        (Frame::new(&b, code[0].0, &|_| Some(0)), b)
    }

    #[test]
    fn writes_below_a_dynamic_allocation_reach_up_to_their_bound() {
        // sub esp,0x10; mov [esp+0xc],eax; mov [esp+4],eax; sub esp,ecx;
        // mov [esp+8],edx; ret
        let code: &[u8] = &[
            0x83, 0xec, 0x10, 0x89, 0x44, 0x24, 0x0c, 0x89, 0x44, 0x24, 0x04, 0x29, 0xcc, 0x89,
            0x54, 0x24, 0x08, 0xc3,
        ];
        let (f, _) = frame(&[(0x1000, code, vec![Successor::Return])]);
        // `esp + 8` is at most -8: the write ends at -4 at the highest.
        assert!(f.invariant_store(-4).is_some());
        assert!(f.invariant_store(-0xc).is_none());
    }

    #[test]
    fn a_loop_that_pops_below_an_allocation_ends_unknown() {
        // sub esp,eax; loop: pop ecx; jmp loop
        let (f, _) = frame(&[
            (0x1000, &[0x29, 0xc4], vec![Successor::FallThrough(0x1002)]),
            (0x1002, &[0x59, 0xeb, 0xfd], vec![Successor::Jump(0x1002)]),
        ]);
        assert_eq!(f.heights(0x1000).0, Height::At(0));
        assert_eq!(f.heights(0x1002).0, Height::Unknown);
    }

    #[test]
    fn esp_from_an_ordinary_register_is_unknown() {
        // sub esp,8; mov [esp+4],eax; lea esp,[ecx-4]; mov [esp],edx; ret
        let code: &[u8] = &[
            0x83, 0xec, 0x08, 0x89, 0x44, 0x24, 0x04, 0x8d, 0x61, 0xfc, 0x89, 0x14, 0x24, 0xc3,
        ];
        let (f, _) = frame(&[(0x1000, code, vec![Successor::Return])]);
        assert!(f.invariant_store(-4).is_none());
    }
}
