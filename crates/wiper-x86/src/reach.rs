//! Which functions of a program may still run when only some code is
//! entered (an extracted program's residual calls and jumps into the
//! original code): everything reachable from those entries by direct calls
//! and tail calls, and every function whose address reachable code
//! computes or data holds (it may be called through a pointer: a signal
//! handler, stdio's callbacks, `work = unzip`). Conservative: a function
//! not kept cannot run, as long as code reaches functions only through
//! direct transfers, constants in its instructions (also relative to the
//! GOT, for position-independent code) and words of data.

use std::collections::{BTreeMap, BTreeSet};

use iced_x86::OpKind;

use crate::{CallTarget, Disassembler, Successor};

/// Why a function is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kept {
    /// Code outside the program (the residual) calls it or jumps into it.
    Entered,
    /// A kept function at this address calls or tail-calls it.
    CalledBy(u32),
    /// A kept function at this address computes its address.
    AddressIn(u32),
    /// The data word at this address holds its address.
    AddressInData(u32),
}

/// Every function start of the program (see
/// [`Disassembler::discover_functions`]) with why it is kept, or `None`
/// when it cannot run once control enters only at `entries` (addresses
/// inside functions: each keeps the function that contains it).
pub fn kept_functions(dis: &mut Disassembler, entries: &[u32]) -> BTreeMap<u32, Option<Kept>> {
    let starts: BTreeSet<u32> = dis.discover_functions().into_iter().collect();
    let mut kept: BTreeMap<u32, Option<Kept>> = starts.iter().map(|&s| (s, None)).collect();
    let mut work = Vec::new();
    let mut keep = |f: u32, why: Kept, work: &mut Vec<u32>| {
        if let Some(slot @ None) = kept.get_mut(&f) {
            *slot = Some(why);
            work.push(f);
        }
    };
    for &e in entries {
        if let Some(&f) = starts.range(..=e).next_back() {
            keep(f, Kept::Entered, &mut work);
        }
    }
    for (word_at, value) in data_words(dis) {
        if starts.contains(&value) {
            keep(value, Kept::AddressInData(word_at), &mut work);
        }
    }
    let got = dis.binary().got;
    while let Some(f) = work.pop() {
        let Ok(function) = dis.function(f) else {
            continue;
        };
        for s in function.blocks.values().flat_map(|b| &b.successors) {
            if let Successor::Call(CallTarget::Function(t))
            | Successor::TailCall(CallTarget::Function(t)) = s
            {
                keep(*t, Kept::CalledBy(f), &mut work);
            }
        }
        for ins in function.instructions() {
            for c in constants(ins, got) {
                if starts.contains(&c) {
                    keep(c, Kept::AddressIn(f), &mut work);
                }
            }
        }
    }
    kept
}

/// The constants an instruction holds that may be code addresses: its
/// direct branch target, immediates and displacement, and the
/// displacement added to the GOT's address when there is one
/// (position-independent code addresses functions as `lea eax,[ebx+d]`
/// with `ebx` the GOT).
pub fn constants(ins: &iced_x86::Instruction, got: Option<u32>) -> Vec<u32> {
    let mut out = Vec::new();
    for k in 0..ins.op_count() {
        match ins.op_kind(k) {
            OpKind::NearBranch32 => out.push(ins.near_branch32()),
            OpKind::Immediate8to32 | OpKind::Immediate32 => out.push(ins.immediate(k) as u32),
            OpKind::Memory => {
                let d = ins.memory_displacement32();
                out.push(d);
                if let Some(g) = got {
                    out.push(g.wrapping_add(d));
                }
            }
            _ => {}
        }
    }
    out
}

/// Every aligned 32-bit word of the loaded data: of the allocated
/// sections that are not code (`.rodata` inside an executable segment
/// too), or, in a file without sections, of the segments that are not
/// executable; with its address.
fn data_words(dis: &Disassembler) -> Vec<(u32, u32)> {
    const SHF_ALLOC: u32 = 2;
    const SHF_EXECINSTR: u32 = 4;
    let binary = dis.binary();
    let mut ranges: Vec<(u32, Vec<u8>)> = binary
        .sections
        .iter()
        .filter(|s| s.flags & SHF_ALLOC != 0 && s.flags & SHF_EXECINSTR == 0)
        .filter_map(|s| Some((s.addr, binary.section_bytes(s)?)))
        .collect();
    if binary.sections.is_empty() {
        ranges = binary
            .segments
            .iter()
            .filter(|s| !s.perms.execute)
            .filter_map(|s| Some((s.vaddr, binary.read(s.vaddr, s.file_size)?)))
            .collect();
    }
    let mut out = Vec::new();
    for (start, bytes) in ranges {
        let skip = (4 - start % 4) % 4;
        let words = bytes.get(skip as usize..).unwrap_or(&[]).chunks_exact(4);
        for (i, w) in words.enumerate() {
            let at = start + skip + 4 * i as u32;
            out.push((at, u32::from_le_bytes([w[0], w[1], w[2], w[3]])));
        }
    }
    out
}
