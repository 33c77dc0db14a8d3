//! Which functions of a program may still run when only some code is
//! entered (an extracted program's residual calls and jumps into the
//! original code): everything reachable from those entries by direct calls
//! and tail calls, and every function whose address reachable code
//! computes or data holds (it may be called through a pointer: a signal
//! handler, stdio's callbacks, `work = unzip`). Conservative: a function
//! not kept cannot run, as long as code reaches functions only through
//! direct transfers, constants in its instructions (also relative to the
//! GOT, for position-independent code) and words of data. A word of the
//! GOT counts only once reachable code or data refers to its slot.

use std::collections::{BTreeMap, BTreeSet, HashSet};

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
    /// Control reaches it only at its entry, which jumps to the residual
    /// code that replaces it: only that jump is kept.
    Replaced,
}

/// What [`kept_functions`] finds.
#[derive(Clone, Debug, Default)]
pub struct Reached {
    /// Every function start of the program (see
    /// [`Disassembler::discover_functions`]) with why it is kept, or `None`
    /// when it cannot run.
    pub fates: BTreeMap<u32, Option<Kept>>,
    /// Every constant of the code that may run and of the entries (see
    /// [`constants`]), code addresses or not: what else that code may
    /// address (the unwind tables, say).
    pub constants: BTreeSet<u32>,
}

/// Which functions may run once control enters only at `entries`. An address
/// inside a function (an entry, or a code address in kept code or in
/// data: a handler that is not a discovered start) keeps the function
/// that holds it, and the code reached from there counts too. The
/// functions in `replaced` jump to residual code at their entry: one
/// reached only at its entry is [`Kept::Replaced`] and what its body
/// reaches does not count; entered anywhere else, it is kept whole.
pub fn kept_functions(dis: &mut Disassembler, entries: &[u32], replaced: &[u32]) -> Reached {
    let starts: BTreeSet<u32> = dis.discover_functions().into_iter().collect();
    let (slots, words): (Vec<_>, Vec<_>) = data_words(dis)
        .into_iter()
        .partition(|&(at, _)| in_got(dis.binary(), at));
    let mut reach = Reach {
        kept: starts.iter().map(|&s| (s, None)).collect(),
        starts: &starts,
        work: Vec::new(),
        scanned: BTreeSet::new(),
        covered: HashSet::new(),
        replaced,
        slots: slots.into_iter().collect(),
        constants: BTreeSet::new(),
    };
    for &e in entries {
        reach.constants.insert(e);
        reach.refer(dis.binary(), e, Kept::Entered);
    }
    for (word_at, value) in words {
        reach.refer(dis.binary(), value, Kept::AddressInData(word_at));
    }
    let got = dis.binary().got;
    while let Some((f, at)) = reach.work.pop() {
        if reach.covered.contains(&at) {
            // Code scanned from an earlier address holds it, and all it
            // reaches.
            continue;
        }
        let Ok(function) = dis.function(at) else {
            continue;
        };
        reach
            .covered
            .extend(function.instructions().map(|i| i.ip32()));
        for s in function.blocks.values().flat_map(|b| &b.successors) {
            // A PLT stub (IFUNCs of a static glibc too) is kept like a
            // function: its code is the jump to what it imports.
            if let Successor::Call(CallTarget::Function(t) | CallTarget::Import { addr: t, .. })
            | Successor::TailCall(
                CallTarget::Function(t) | CallTarget::Import { addr: t, .. },
            ) = s
            {
                reach.keep(*t, Kept::CalledBy(f));
            }
        }
        for ins in function.instructions() {
            for c in constants(ins, got) {
                reach.constants.insert(c);
                reach.refer(dis.binary(), c, Kept::AddressIn(f));
            }
        }
    }
    Reached {
        fates: reach.kept,
        constants: reach.constants,
    }
}

/// The state of [`kept_functions`]: each function's fate so far, and the
/// addresses whose code is still to be scanned, with the function start
/// that holds each.
struct Reach<'a> {
    /// Each function's fate so far.
    kept: BTreeMap<u32, Option<Kept>>,
    /// The function starts.
    starts: &'a BTreeSet<u32>,
    /// Code addresses to scan, with the start of the function holding each.
    work: Vec<(u32, u32)>,
    /// The addresses ever queued.
    scanned: BTreeSet<u32>,
    /// The addresses of the instructions scanned so far.
    covered: HashSet<u32>,
    /// The functions replaced by residual code.
    replaced: &'a [u32],
    /// The words of the GOT not referred to yet, by address: what one
    /// holds counts only once code or data refers to the slot.
    slots: BTreeMap<u32, u32>,
    /// The constants of the entries and of the code scanned so far.
    constants: BTreeSet<u32>,
}

impl Reach<'_> {
    /// Counts a constant of reachable code or data (or an entry) for
    /// `why`: a code address keeps its function; the address of a GOT
    /// slot makes what the slot holds count.
    fn refer(&mut self, binary: &wiper_elf::Binary, value: u32, why: Kept) {
        if binary.is_executable(value) {
            self.keep(value, why);
        }
        if let Some(held) = self.slots.remove(&value) {
            if binary.is_executable(held) {
                self.keep(held, Kept::AddressInData(value));
            }
        }
    }

    /// Keeps the function holding the code address `at` for `why`: whole,
    /// with the code from `at` queued for scanning, unless it is replaced
    /// and `at` is its entry, then as [`Kept::Replaced`].
    fn keep(&mut self, at: u32, why: Kept) {
        let Some(&f) = self.starts.range(..=at).next_back() else {
            return;
        };
        let why = if self.replaced.contains(&f) && at == f {
            Kept::Replaced
        } else {
            why
        };
        let slot = self.kept.get_mut(&f).expect("a start");
        match (*slot, why) {
            (None, _) | (Some(Kept::Replaced), _) if why != Kept::Replaced => *slot = Some(why),
            (None, Kept::Replaced) => *slot = Some(why),
            _ => {}
        }
        if why != Kept::Replaced && self.scanned.insert(at) {
            self.work.push((f, at));
            if at != f && self.scanned.insert(f) {
                self.work.push((f, f));
            }
        }
    }
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

/// Whether `addr` is in the GOT (`.got` or `.got.plt`). Code reads a GOT
/// slot only through its address (a displacement from the GOT pointer in
/// position-independent code, an absolute address in a PLT stub of a
/// fixed executable), and the loader finds the slots it fills through
/// the `r_offset` words of relocations, which are data words: a slot
/// that nothing refers to is never read, and the function address it
/// holds (`main`'s, for a `_start` that is dropped) does not count.
fn in_got(binary: &wiper_elf::Binary, addr: u32) -> bool {
    binary
        .sections
        .iter()
        .filter(|s| s.name == ".got" || s.name == ".got.plt")
        .any(|s| addr.wrapping_sub(s.addr) < s.size)
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
