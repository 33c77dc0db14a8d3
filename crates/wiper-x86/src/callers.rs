//! Whether any caller of a function reads `edx` after it returns: evidence
//! gathered from the whole binary, so that the specializer need not put a
//! known `edx` into the machine at the residual function's `ret`.
//!
//! `edx` is caller-saved in the i386 System V ABI, but it is also the high
//! half of a 64-bit result (`edx:eax`), and functions the compiler sees
//! whole may keep values in it across calls. So the ABI alone does not make
//! it dead; the binary's callers can. [`CallerAnalysis::edx_at_return`]
//! finds every reference to a function's entry address:
//!
//! - every 4-byte copy of the address anywhere in the loaded image (an
//!   immediate or displacement in code: `push F`, `mov [x], F`; a function
//!   pointer in data or under a relocation): the address escapes, `edx` is
//!   live;
//! - every relative branch encoding in the executable segments that targets
//!   the entry (`call`/`jmp rel32`, `jcc rel32`, `jmp`/`jcc`/`loop rel8`, at
//!   every byte offset). Each must be explained by the decoded code of the
//!   function symbol holding it: a direct `call F` whose return site does
//!   not read `edx` before writing it (backward liveness over the caller's
//!   CFG; where the caller itself returns with `edx` untouched, its own
//!   callers are asked the same question), a `jmp F`/`jcc F` tail call from
//!   a function whose callers ignore `edx` (its obligations pass to `F`), a
//!   jump inside `F` to its own entry, or bytes inside another decoded
//!   instruction (not a branch). Anything else keeps `edx` live.
//!
//! A position-independent executable takes addresses PC-relative (through
//! the GOT or a PC thunk and arbitrary arithmetic), which a byte scan cannot
//! prove complete: there `edx` is always live. So is it for the ELF entry
//! point.
//!
//! Calls after the return site: a call to a function of the binary reads
//! `edx` when that function reads it before writing it on some path (the
//! same liveness over its CFG, transitively) and otherwise passes it
//! through (it may preserve it); a call to an import (PLT) follows the ABI
//! (arguments on the stack, `edx` clobbered); an indirect call and a system
//! call other than `exit` read it. Recursion is solved as a least fixpoint
//! (a read must be reached along some finite path). The analysis decodes
//! at most [`MAX_DECODED`] functions per [`CallerAnalysis`]; past that,
//! `edx` is live.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::rc::Rc;

use iced_x86::{FlowControl, Instruction, InstructionInfoFactory, OpAccess, Register};
use wiper_elf::{Binary, FileType};

use crate::{Block, CallTarget, Disassembler, Function, Successor};

/// Most functions one [`CallerAnalysis`] decodes before it answers
/// "live" for anything that needs more.
pub const MAX_DECODED: usize = 512;

/// Whether the callers of a function may read `edx` after it returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EdxAtReturn {
    /// No caller can read it: the entry address is only the target of
    /// these direct calls and tail jumps, all explained.
    Dead {
        /// Direct `call`s whose return sites write `edx` before reading it.
        calls: usize,
        /// Tail `jmp`/`jcc`s from functions whose own `edx` at return is
        /// dead.
        tail_jumps: usize,
    },
    /// A caller may read it, or not every use of the address is known.
    Live(EdxLive),
}

impl EdxAtReturn {
    /// Whether `edx` is dead at the function's return.
    pub fn is_dead(&self) -> bool {
        matches!(self, EdxAtReturn::Dead { .. })
    }
}

/// Why `edx` is taken to be live at a function's return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EdxLive {
    /// The binary is position-independent: addresses are taken PC-relative,
    /// which the analysis cannot enumerate.
    PositionIndependent,
    /// The function is the ELF entry point.
    EntryPoint,
    /// The entry address appears as a 4-byte value at this address (an
    /// immediate, a displacement, a pointer in data).
    AddressTaken(u32),
    /// A branch encoding targeting the entry at this address that the
    /// decoded code does not explain (code outside any decodable function
    /// symbol, or not a call or jump).
    UnknownReference(u32),
    /// The direct call at this address may be followed by a read of `edx`
    /// (or by a return to callers that may read it).
    ReadAfterCall(u32),
    /// The tail jump at this address comes from a function whose callers
    /// may read `edx`.
    TailJump(u32),
    /// The analysis needed more than [`MAX_DECODED`] functions, or a
    /// function it needed could not be decoded.
    TooComplex,
}

impl fmt::Display for EdxAtReturn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EdxAtReturn::Dead { calls, tail_jumps } => write!(
                f,
                "dead ({calls} direct call(s), {tail_jumps} tail jump(s), none reads edx)"
            ),
            EdxAtReturn::Live(why) => write!(f, "live ({why})"),
        }
    }
}

impl fmt::Display for EdxLive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EdxLive::PositionIndependent => write!(f, "position-independent binary"),
            EdxLive::EntryPoint => write!(f, "the ELF entry point"),
            EdxLive::AddressTaken(a) => write!(f, "address taken at {a:#x}"),
            EdxLive::UnknownReference(a) => write!(f, "unexplained branch at {a:#x}"),
            EdxLive::ReadAfterCall(a) => write!(f, "the caller at {a:#x} may read edx"),
            EdxLive::TailJump(a) => write!(f, "tail jump at {a:#x} from a caller that may"),
            EdxLive::TooComplex => write!(f, "callers too large to analyze"),
        }
    }
}

/// What a branch encoding found by the byte scan turned out to be.
enum Site {
    /// Bytes inside another decoded instruction: no branch.
    Inside,
    /// A jump inside the function itself to its own entry.
    Internal,
    /// A direct call from the function at `caller`, returning to `ret`
    /// (`None` when the decoder found the call never returns).
    Call { caller: u32, ret: Option<u32> },
    /// A jump (tail call) from the function at `from`.
    Jump { from: u32 },
    /// Not explained by decoded code.
    Unknown,
}

/// The two questions the analysis asks about a function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Question {
    /// Does it read `edx` before writing it?
    ReadsAtEntry,
    /// May its callers read `edx` after it returns?
    LiveAtReturn,
}

/// Answers "may a caller read `edx` after this function returns?" for
/// functions of one binary, caching decoded functions and answers.
///
/// Both questions it asks ([`Question`]) are liveness, a least fixpoint
/// over the call graph: a question met again while it is being answered
/// (recursion) is first assumed "not live"; if the answer turns out
/// "live", the answers found under that assumption are forgotten.
pub struct CallerAnalysis<'a> {
    dis: Disassembler<'a>,
    factory: InstructionInfoFactory,
    /// Decoded functions by entry (`None`: could not be decoded).
    functions: HashMap<u32, Option<Rc<Function>>>,
    /// Answers, and why `edx` is live at a function's return.
    answers: HashMap<(u32, Question), (bool, Option<EdxLive>)>,
    /// The order answers were found in (to forget the latest ones).
    found: Vec<(u32, Question)>,
    /// Questions being answered, and whether their assumed answer was used.
    in_progress: HashMap<(u32, Question), bool>,
    /// Call and tail-jump counts of the dead answers, for the report.
    counts: HashMap<u32, (usize, usize)>,
}

impl<'a> CallerAnalysis<'a> {
    /// An analysis of `binary`.
    pub fn new(binary: &'a Binary) -> Self {
        CallerAnalysis {
            dis: Disassembler::new(binary),
            factory: InstructionInfoFactory::new(),
            functions: HashMap::new(),
            answers: HashMap::new(),
            found: Vec::new(),
            in_progress: HashMap::new(),
            counts: HashMap::new(),
        }
    }

    /// Whether a caller of the function at `entry` may read `edx` after it
    /// returns (see the module documentation for the evidence).
    pub fn edx_at_return(&mut self, entry: u32) -> EdxAtReturn {
        let (live, why) = self.ask(entry, Question::LiveAtReturn);
        if live {
            EdxAtReturn::Live(why.unwrap_or(EdxLive::TooComplex))
        } else {
            let (calls, tail_jumps) = self.counts.get(&entry).copied().unwrap_or_default();
            EdxAtReturn::Dead { calls, tail_jumps }
        }
    }

    /// The answer to `q` about `entry` (`true`: live), with the reason.
    fn ask(&mut self, entry: u32, q: Question) -> (bool, Option<EdxLive>) {
        let key = (entry, q);
        if let Some(known) = self.answers.get(&key) {
            return *known;
        }
        if let Some(used) = self.in_progress.get_mut(&key) {
            *used = true;
            return (false, None);
        }
        self.in_progress.insert(key, false);
        let mark = self.found.len();
        let answer = match q {
            Question::ReadsAtEntry => match self.decoded(entry) {
                Some(func) => (self.live_from(&func, entry, false), None),
                None => (true, None),
            },
            Question::LiveAtReturn => match self.compute(entry) {
                Ok(counts) => {
                    self.counts.insert(entry, counts);
                    (false, None)
                }
                Err(why) => (true, Some(why)),
            },
        };
        let assumed = self.in_progress.remove(&key).unwrap_or(false);
        if assumed && answer.0 {
            for k in self.found.drain(mark..) {
                self.answers.remove(&k);
            }
        }
        self.answers.insert(key, answer);
        self.found.push(key);
        answer
    }

    /// The evidence that `edx` is dead at `f`'s return: the counts of
    /// direct calls and tail jumps, or why it may be live.
    fn compute(&mut self, f: u32) -> Result<(usize, usize), EdxLive> {
        let binary = self.dis.binary();
        if binary.file_type == FileType::PositionIndependent {
            return Err(EdxLive::PositionIndependent);
        }
        if binary.entry == f {
            return Err(EdxLive::EntryPoint);
        }
        if let Some(at) = absolute_references(binary, f).first() {
            return Err(EdxLive::AddressTaken(*at));
        }
        let (mut calls, mut tail_jumps) = (0, 0);
        for site in branch_references(binary, f) {
            match self.explain(site, f) {
                Site::Inside | Site::Internal => {}
                Site::Unknown => return Err(EdxLive::UnknownReference(site)),
                Site::Call { caller, ret } => {
                    if let Some(ret) = ret {
                        if self.live_after_call(caller, ret) {
                            return Err(EdxLive::ReadAfterCall(site));
                        }
                    }
                    calls += 1;
                }
                Site::Jump { from } => {
                    if self.ask(from, Question::LiveAtReturn).0 {
                        return Err(EdxLive::TailJump(site));
                    }
                    tail_jumps += 1;
                }
            }
        }
        Ok((calls, tail_jumps))
    }

    /// The decoded function at `entry`, within the decoding budget.
    fn decoded(&mut self, entry: u32) -> Option<Rc<Function>> {
        if let Some(f) = self.functions.get(&entry) {
            return f.clone();
        }
        let f = if self.functions.len() < MAX_DECODED {
            self.dis.function(entry).ok().map(Rc::new)
        } else {
            None
        };
        self.functions.insert(entry, f.clone());
        f
    }

    /// What the branch encoding at `site` (which targets `f`) is, in the
    /// decoded code of the function symbol holding it.
    fn explain(&mut self, site: u32, f: u32) -> Site {
        let binary = self.dis.binary();
        let Some(sym) = binary.function_containing(site) else {
            return if in_padding(binary, site) {
                Site::Inside
            } else {
                Site::Unknown
            };
        };
        let owner = sym.addr;
        let Some(func) = self.decoded(owner) else {
            return Site::Unknown;
        };
        let Some((block, ins)) = instruction_covering(&func, site) else {
            return Site::Unknown;
        };
        if ins.ip32() != site {
            return Site::Inside;
        }
        if ins.near_branch_target() != u64::from(f) {
            return Site::Unknown;
        }
        match ins.flow_control() {
            FlowControl::Call => Site::Call {
                caller: owner,
                ret: block.successors.iter().find_map(|s| match s {
                    Successor::FallThrough(a) => Some(*a),
                    _ => None,
                }),
            },
            FlowControl::UnconditionalBranch | FlowControl::ConditionalBranch if owner == f => {
                Site::Internal
            }
            FlowControl::UnconditionalBranch | FlowControl::ConditionalBranch => {
                Site::Jump { from: owner }
            }
            _ => Site::Unknown,
        }
    }

    /// Whether `edx` may be read after a call from `caller` returns to
    /// `ret`: read before written on some path, or carried to `caller`'s
    /// own return when its callers may read it.
    fn live_after_call(&mut self, caller: u32, ret: u32) -> bool {
        let Some(func) = self.decoded(caller) else {
            return true;
        };
        if self.live_from(&func, ret, false) {
            return true;
        }
        if !self.live_from(&func, ret, true) {
            return false;
        }
        // Some path returns from `caller` with `edx` as the callee left it.
        self.ask(caller, Question::LiveAtReturn).0
    }

    /// Backward liveness of `edx` over `func`: whether it is live at the
    /// block starting at `start`, when it is live (`at_return`) or dead
    /// after the function's own `ret`s.
    fn live_from(&mut self, func: &Function, start: u32, at_return: bool) -> bool {
        // Per block: (gen, kill) of its instructions, and whether control
        // leaving it may carry edx to a reader.
        let mut summary: BTreeMap<u32, (bool, bool, bool)> = BTreeMap::new();
        for (&addr, block) in &func.blocks {
            let (gen, kill) = self.block_transfer(block);
            let mut exits = false;
            for s in &block.successors {
                exits |= match s {
                    Successor::Return => at_return,
                    Successor::TailCall(CallTarget::Function(t)) => {
                        at_return || self.ask(*t, Question::ReadsAtEntry).0
                    }
                    // An import follows the ABI: it returns its own edx.
                    Successor::TailCall(CallTarget::Import { .. }) => false,
                    Successor::TailCall(CallTarget::Indirect) | Successor::IndirectJump => true,
                    _ => false,
                };
            }
            summary.insert(addr, (gen, kill, exits));
        }
        let mut live_in: BTreeMap<u32, bool> = func.blocks.keys().map(|a| (*a, false)).collect();
        loop {
            let mut changed = false;
            for (addr, block) in func.blocks.iter().rev() {
                let (gen, kill, exits) = summary[addr];
                let out = exits
                    || block
                        .local_successors()
                        .any(|t| live_in.get(&t).copied().unwrap_or(true));
                let live = gen || (out && !kill);
                if live != live_in[addr] {
                    live_in.insert(*addr, live);
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        live_in.get(&start).copied().unwrap_or(true)
    }

    /// A block's effect on `edx`: `(gen, kill)`, live before it is
    /// `gen || (live_after && !kill)`.
    fn block_transfer(&mut self, block: &Block) -> (bool, bool) {
        let halts = block.successors == [Successor::Halt];
        let call = block.successors.iter().find_map(|s| match s {
            Successor::Call(t) => Some(t.clone()),
            _ => None,
        });
        let (mut gen, mut kill) = (false, false);
        for (i, ins) in block.instructions.iter().enumerate().rev() {
            let last = i + 1 == block.instructions.len();
            let (r, k) = match ins.flow_control() {
                FlowControl::Call | FlowControl::IndirectCall => match &call {
                    Some(CallTarget::Function(t)) if last => {
                        (self.ask(*t, Question::ReadsAtEntry).0, false)
                    }
                    // The ABI: arguments on the stack, edx clobbered.
                    Some(CallTarget::Import { .. }) if last => (false, true),
                    _ => (true, false),
                },
                // An exit system call reads ebx only; others take
                // arguments in edx.
                FlowControl::Interrupt => (!(halts && last), false),
                _ => self.uses(ins),
            };
            gen = r || (gen && !k);
            kill = kill || k;
        }
        (gen, kill)
    }

    /// `(reads, kills)` of `edx` by an ordinary instruction: a partial
    /// write (`dl`, `dh`, `dx`) keeps the other bits and kills nothing.
    fn uses(&mut self, ins: &Instruction) -> (bool, bool) {
        let (mut reads, mut kills) = (false, false);
        for used in self.factory.info(ins).used_registers() {
            let reg = used.register();
            if reg.full_register32() != Register::EDX {
                continue;
            }
            match used.access() {
                OpAccess::Read
                | OpAccess::CondRead
                | OpAccess::ReadWrite
                | OpAccess::ReadCondWrite => reads = true,
                OpAccess::Write if reg == Register::EDX => kills = true,
                _ => {}
            }
        }
        (reads, kills && !reads)
    }
}

/// The block and decoded instruction of `func` whose bytes hold `addr`.
pub(crate) fn instruction_covering(func: &Function, addr: u32) -> Option<(&Block, &Instruction)> {
    let (_, block) = func.blocks.range(..=addr).next_back()?;
    let ins = block
        .instructions
        .iter()
        .find(|i| i.ip32() <= addr && addr < i.next_ip32())?;
    Some((block, ins))
}

/// Whether `addr` lies in the alignment padding between two function
/// symbols: from the end of the one before to the start of the next, the
/// bytes decode to no-operations only (`nop`, `lea r,[r+0]`, `mov r,r`,
/// `xchg r,r`, `int3`). Control enters padding, if at all, at its start,
/// so a branch encoding inside it is no branch.
pub(crate) fn in_padding(binary: &Binary, addr: u32) -> bool {
    let code = || binary.symbols.iter().filter(|s| s.is_code() && s.size > 0);
    let Some(start) = code()
        .map(|s| s.addr.wrapping_add(s.size))
        .filter(|&end| end <= addr)
        .max()
    else {
        return false;
    };
    let Some(end) = code().map(|s| s.addr).filter(|&a| a > addr).min() else {
        return false;
    };
    let Some(bytes) = binary.bytes_from(start) else {
        return false;
    };
    let len = (end - start) as usize;
    let Some(bytes) = bytes.get(..len) else {
        return false;
    };
    let mut decoder = iced_x86::Decoder::with_ip(32, bytes, u64::from(start), 0);
    let mut covered = false;
    while decoder.can_decode() {
        let ins = decoder.decode();
        if ins.is_invalid() || !is_no_op(&ins) {
            return false;
        }
        covered |= ins.ip32() <= addr && addr < ins.next_ip32();
    }
    covered
}

/// Whether `ins` is one of the no-operations compilers and assemblers pad
/// with.
fn is_no_op(ins: &Instruction) -> bool {
    use iced_x86::{Mnemonic, OpKind};
    let same_regs = || {
        ins.op_count() == 2
            && ins.op0_kind() == OpKind::Register
            && ins.op1_kind() == OpKind::Register
            && ins.op0_register() == ins.op1_register()
    };
    match ins.mnemonic() {
        Mnemonic::Nop | Mnemonic::Int3 => true,
        Mnemonic::Mov | Mnemonic::Xchg => same_regs(),
        Mnemonic::Lea => {
            ins.op0_register() == ins.memory_base()
                && ins.memory_index() == Register::None
                && ins.memory_displacement32() == 0
        }
        _ => false,
    }
}

/// The file-backed bytes of each loaded segment, with their address and
/// whether they are executable; the ELF and program headers (loaded with
/// the first segment, holding segment addresses and the entry point, not
/// references) left out.
fn loaded_bytes(binary: &Binary) -> impl Iterator<Item = (u32, &[u8], bool)> {
    let file = binary.file_bytes();
    let field = |at: usize, len: usize| {
        file.get(at..at + len).map_or(0, |b| {
            b.iter().rev().fold(0usize, |v, x| v << 8 | usize::from(*x))
        })
    };
    // e_phoff, e_phentsize, e_phnum.
    let headers_end = 52usize.max(field(28, 4) + field(42, 2) * field(44, 2));
    binary.segments.iter().filter_map(move |s| {
        let start = (s.offset as usize).max(headers_end);
        let end = s.offset as usize + s.file_size as usize;
        let bytes = file.get(start..end)?;
        let vaddr = s.vaddr.wrapping_add((start - s.offset as usize) as u32);
        Some((vaddr, bytes, s.perms.execute))
    })
}

/// Addresses in the loaded image where `target` is stored as a 4-byte
/// little-endian value, at any alignment.
pub fn absolute_references(binary: &Binary, target: u32) -> Vec<u32> {
    let pattern = target.to_le_bytes();
    let mut found = Vec::new();
    for (vaddr, bytes, _) in loaded_bytes(binary) {
        for (i, w) in bytes.windows(4).enumerate() {
            if w == pattern {
                found.push(vaddr.wrapping_add(i as u32));
            }
        }
    }
    found
}

/// Addresses in the executable segments, at any byte offset, of relative
/// branch encodings whose target is `target`: `call`/`jmp rel32` (`e8`,
/// `e9`), `jcc rel32` (`0f 80`..`0f 8f`), `jmp`/`jcc`/`loop`/`jecxz rel8`
/// (`eb`, `70`..`7f`, `e0`..`e3`). Branches with an operand-size prefix
/// (`rel16`) wrap their target to 16 bits and cannot reach code at the
/// usual link addresses.
pub fn branch_references(binary: &Binary, target: u32) -> Vec<u32> {
    let mut found = Vec::new();
    for (vaddr, bytes, exec) in loaded_bytes(binary) {
        if !exec {
            continue;
        }
        let rel32 = |at: usize| -> Option<i32> {
            let b = bytes.get(at..at + 4)?;
            Some(i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        };
        for i in 0..bytes.len() {
            let here = vaddr.wrapping_add(i as u32);
            let hits = |len: u32, rel: Option<i32>| {
                rel.is_some_and(|r| here.wrapping_add(len).wrapping_add(r as u32) == target)
            };
            let hit = match bytes[i] {
                0xe8 | 0xe9 => hits(5, rel32(i + 1)),
                0x0f if bytes.get(i + 1).is_some_and(|b| (0x80..=0x8f).contains(b)) => {
                    hits(6, rel32(i + 2))
                }
                0xeb | 0x70..=0x7f | 0xe0..=0xe3 => {
                    hits(2, bytes.get(i + 1).map(|b| i32::from(*b as i8)))
                }
                _ => false,
            };
            if hit {
                found.push(here);
            }
        }
    }
    found
}
