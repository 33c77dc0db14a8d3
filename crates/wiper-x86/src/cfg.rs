//! Recursive-descent decoding and basic-block formation.
//!
//! Phase 1 decodes runs of instructions from a worklist of addresses, recording for
//! every instruction that ends a block how control leaves it. Phase 2 cuts the decoded
//! instructions into blocks at every leader (entry, branch target, return site).
//!
//! Jump tables are resolved on the blocks decoded so far ([`jumptable`]), and the
//! function is decoded again with their targets, until the tables found are the ones
//! the decoding used: every table's range then holds on every path of the final CFG.

use std::collections::{BTreeMap, BTreeSet};

use iced_x86::{Decoder, DecoderOptions, FlowControl, Instruction, Mnemonic, OpKind, Register};
use wiper_elf::Binary;

use crate::jumptable::{self, Graph, JumpTable};
use crate::{Block, CallTarget, DecodeError, Disassembler, Function, Successor, MAX_INSTRUCTIONS};

/// Linux i386 system call numbers that end the process.
use crate::syscalls::{SYS_EXIT, SYS_EXIT_GROUP};

/// How many times a function is decoded again with the jump tables found.
const MAX_ROUNDS: usize = 16;

/// What phase 1 knows about one function.
struct Decoded {
    insns: BTreeMap<u32, Instruction>,
    /// Successors of instructions that end a block.
    exits: BTreeMap<u32, (Vec<Successor>, Option<JumpTable>)>,
    leaders: BTreeSet<u32>,
}

/// Decodes the function at `entry` and forms its basic blocks.
pub(crate) fn build(dis: &mut Disassembler<'_>, entry: u32) -> Result<Function, DecodeError> {
    let binary = dis.binary();
    if !binary.is_executable(entry) {
        return Err(DecodeError::NotExecutable(entry));
    }
    let mut scope = Scope::of(binary, entry);
    // The tables of the last decoding that succeeded, and those to try next.
    let mut decoded: BTreeMap<u32, JumpTable> = BTreeMap::new();
    let mut tables: BTreeMap<u32, JumpTable> = BTreeMap::new();
    // Jumps whose table a later round could not confirm, or whose targets
    // are no code: never resolved again.
    let mut refused: BTreeSet<u32> = BTreeSet::new();
    let mut rounds = 0;
    let blocks = loop {
        rounds += 1;
        if rounds > MAX_ROUNDS {
            break decode(dis, &scope, &BTreeMap::new())?;
        }
        let blocks = match decode(dis, &scope, &tables) {
            Ok(blocks) => blocks,
            Err(e) if tables == decoded => return Err(e),
            Err(_) => {
                // A table's targets run into other code (its range is too
                // wide, the entries beyond it belong to another table).
                refused.extend(misleading(dis, &scope, &decoded, &tables));
                tables.retain(|j, _| !refused.contains(j));
                continue;
            }
        };
        decoded = tables.clone();
        let found = resolve_tables(dis, &scope, &blocks, &refused);
        refused.extend(tables.keys().filter(|j| !found.contains_key(j)));
        if found == tables {
            // A call whose fall-through another path enters at another
            // stack height does not return there: decode again without it.
            let pops = call_pops(dis, &blocks);
            let stuck = jumptable::calls_that_cannot_return(&blocks, scope.entry, &|call| {
                pops.get(&call).copied().flatten()
            });
            if stuck.is_subset(&scope.stuck_calls) {
                break blocks;
            }
            scope.stuck_calls.extend(stuck);
            continue;
        }
        tables = found;
    };
    Ok(Function {
        name: binary.function_at(entry).map(|s| s.name.clone()),
        entry,
        blocks,
    })
}

/// The jumps of `tables` new or changed since `good` (with which the
/// function decodes) whose tables make the decoding fail, adding them one
/// by one to the others that do not.
fn misleading(
    dis: &mut Disassembler<'_>,
    scope: &Scope,
    good: &BTreeMap<u32, JumpTable>,
    tables: &BTreeMap<u32, JumpTable>,
) -> Vec<u32> {
    let mut kept = good.clone();
    let mut bad = Vec::new();
    for (j, t) in tables.iter().filter(|(j, t)| good.get(j) != Some(t)) {
        let before = kept.insert(*j, t.clone());
        if decode(dis, scope, &kept).is_err() {
            bad.push(*j);
            match before {
                Some(old) => kept.insert(*j, old),
                None => kept.remove(j),
            };
        }
    }
    bad
}

/// Decodes the function by recursive descent, following the targets of `tables`.
fn decode(
    dis: &mut Disassembler<'_>,
    scope: &Scope,
    tables: &BTreeMap<u32, JumpTable>,
) -> Result<BTreeMap<u32, Block>, DecodeError> {
    // The entry, and targets of indirect jumps known from outside (a
    // specializer that knows where a computed `goto` goes).
    let roots: Vec<u32> = std::iter::once(scope.entry)
        .chain(dis.known_targets(scope.entry))
        .filter(|&t| t == scope.entry || scope.holds(dis.binary(), t))
        .collect();
    let mut d = Decoded {
        insns: BTreeMap::new(),
        exits: BTreeMap::new(),
        leaders: roots.iter().copied().collect(),
    };
    let mut work = roots;
    while let Some(addr) = work.pop() {
        if d.insns.contains_key(&addr) {
            continue;
        }
        decode_run(dis, scope, tables, &mut d, addr, &mut work)?;
    }
    Ok(form_blocks(d))
}

/// The jump tables of every indirect jump of `blocks` (but those `refused`)
/// that [`jumptable::resolve`] resolves, by jump address.
fn resolve_tables(
    dis: &mut Disassembler<'_>,
    scope: &Scope,
    blocks: &BTreeMap<u32, Block>,
    refused: &BTreeSet<u32>,
) -> BTreeMap<u32, JumpTable> {
    let binary = dis.binary();
    let pops = call_pops(dis, blocks);
    let graph = Graph::new(binary, blocks, scope.entry, pops);
    let accept = |t: u32| scope.holds(binary, t);
    blocks
        .values()
        .filter_map(|b| {
            let last = b.instructions.last()?;
            let indirect = last.flow_control() == FlowControl::IndirectBranch
                && last.mnemonic() == Mnemonic::Jmp
                && !refused.contains(&last.ip32());
            indirect.then(|| jumptable::resolve(&graph, b.start, &accept))?
        })
        .map(|t| (t.jump, t))
        .collect()
}

/// What each call of `blocks` pops on return, by the call's address: a
/// known callee's `ret N`; calls through pointers and to imports are taken
/// to follow the usual convention.
fn call_pops(
    dis: &mut Disassembler<'_>,
    blocks: &BTreeMap<u32, Block>,
) -> BTreeMap<u32, Option<u32>> {
    let mut pops = BTreeMap::new();
    for b in blocks.values() {
        let target = b.successors.iter().find_map(|s| match s {
            Successor::Call(t) => Some(t),
            _ => None,
        });
        if let (Some(t), Some(call)) = (target, b.instructions.last()) {
            let popped = match t {
                CallTarget::Function(f) => dis.callee_pops(*f),
                _ => Some(0),
            };
            pops.insert(call.ip32(), popped);
        }
    }
    pops
}

/// What belongs to the function: used to tell tail calls from local jumps.
struct Scope {
    entry: u32,
    /// Calls found not to return where they are, though their callee may
    /// ([`jumptable::calls_that_cannot_return`]).
    stuck_calls: BTreeSet<u32>,
    /// `[start, end)` of the function's symbol, when it has a size.
    range: Option<(u32, u32)>,
    name: Option<String>,
}

impl Scope {
    fn of(binary: &Binary, entry: u32) -> Scope {
        let sym = binary.function_at(entry);
        Scope {
            entry,
            stuck_calls: BTreeSet::new(),
            range: sym
                .filter(|s| s.size > 0)
                .map(|s| (s.addr, s.addr.wrapping_add(s.size))),
            name: sym.map(|s| s.name.clone()),
        }
    }

    /// Whether `target` may be code of the function: a jump-table target. With
    /// a symbol size, inside the symbol or a `.cold` part of it; without,
    /// anywhere executable but another function's entry.
    fn holds(&self, binary: &Binary, target: u32) -> bool {
        if !binary.is_executable(target) {
            return false;
        }
        if target == self.entry {
            return true;
        }
        let cold = |name: &str| {
            self.name
                .as_ref()
                .is_some_and(|n| name.starts_with(&format!("{n}.cold")))
        };
        if let Some((lo, hi)) = self.range {
            return (lo..hi).contains(&target)
                || binary
                    .function_containing(target)
                    .is_some_and(|s| cold(&s.name));
        }
        !binary.function_at(target).is_some_and(|s| !cold(&s.name))
    }

    /// Whether a jump to `target` leaves the function (a tail call).
    fn is_tail_call(&self, binary: &Binary, target: u32) -> bool {
        if target == self.entry {
            return false;
        }
        if let Some((lo, hi)) = self.range {
            if (lo..hi).contains(&target) {
                return false;
            }
        }
        if binary.plt.contains_key(&target) {
            return true;
        }
        match binary.function_at(target) {
            // gcc moves unlikely code of `f` into `f.cold`, reached by plain jumps.
            Some(sym) => !self
                .name
                .as_ref()
                .is_some_and(|n| sym.name.starts_with(&format!("{n}.cold"))),
            None => false,
        }
    }
}

fn decode_one(binary: &Binary, addr: u32) -> Result<Instruction, DecodeError> {
    let bytes = binary
        .bytes_from(addr)
        .ok_or(DecodeError::NotExecutable(addr))?;
    let mut decoder = Decoder::with_ip(32, bytes, addr as u64, DecoderOptions::NONE);
    let ins = decoder.decode();
    if ins.is_invalid() {
        let shown = &bytes[..bytes.len().min(8)];
        if decoder.last_error() == iced_x86::DecoderError::NoMoreBytes {
            return Err(DecodeError::Truncated(addr));
        }
        return Err(DecodeError::Invalid {
            addr,
            bytes: shown
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(" "),
        });
    }
    Ok(ins)
}

/// Checks that `ins` overlaps no decoded instruction, except where one of the
/// two is the other without some of its prefix bytes ([`nested`]). Returns the
/// end shared by such a pair: both fall through to it, so a block starts there.
fn check_overlap(
    binary: &Binary,
    d: &Decoded,
    ins: &Instruction,
) -> Result<Option<u32>, DecodeError> {
    let addr = ins.ip32();
    let mut shared_end = None;
    if let Some((&prev, outer)) = d.insns.range(..addr).next_back() {
        if outer.next_ip32() > addr {
            if !nested(binary, outer, ins) {
                return Err(DecodeError::Overlap(addr, prev));
            }
            shared_end = Some(ins.next_ip32());
        }
    }
    if let Some((&next, inner)) = d.insns.range(addr + 1..).next() {
        if ins.next_ip32() > next {
            if !nested(binary, ins, inner) {
                return Err(DecodeError::Overlap(next, addr));
            }
            shared_end = Some(ins.next_ip32());
        }
    }
    Ok(shared_end)
}

/// Whether `inner` is `outer` without some of its leading prefix bytes: glibc's
/// atomic operations jump over a `lock` prefix (`je 1f; lock; 1: cmpxchg`) when
/// the process is single-threaded. Both are the same operation and end at the
/// same address.
fn nested(binary: &Binary, outer: &Instruction, inner: &Instruction) -> bool {
    const PREFIXES: [u8; 11] = [
        0xf0, 0xf2, 0xf3, 0x2e, 0x36, 0x3e, 0x26, 0x64, 0x65, 0x66, 0x67,
    ];
    let skipped = inner.ip32().wrapping_sub(outer.ip32());
    outer.ip32() < inner.ip32()
        && inner.next_ip32() == outer.next_ip32()
        && inner.code() == outer.code()
        && binary
            .read(outer.ip32(), skipped)
            .is_some_and(|b| b.iter().all(|x| PREFIXES.contains(x)))
}

fn call_target(binary: &Binary, ins: &Instruction) -> CallTarget {
    if !matches!(ins.op0_kind(), OpKind::NearBranch32 | OpKind::NearBranch16) {
        return CallTarget::Indirect;
    }
    let t = ins.near_branch32();
    if t == 0
        && matches!(
            ins.flow_control(),
            FlowControl::Call | FlowControl::UnconditionalBranch
        )
    {
        return CallTarget::Absent;
    }
    match binary.plt.get(&t) {
        Some(name) => CallTarget::Import {
            addr: t,
            name: name.clone(),
        },
        None => CallTarget::Function(t),
    }
}

fn branch_target(
    binary: &Binary,
    ins: &Instruction,
    what: &'static str,
) -> Result<u32, DecodeError> {
    let to = ins.near_branch32();
    if !binary.is_executable(to) {
        return Err(DecodeError::BadTarget {
            what,
            from: ins.ip32(),
            to,
        });
    }
    Ok(to)
}

/// Decodes straight-line code from `start` until an instruction ends the run.
fn decode_run(
    dis: &mut Disassembler<'_>,
    scope: &Scope,
    tables: &BTreeMap<u32, JumpTable>,
    d: &mut Decoded,
    start: u32,
    work: &mut Vec<u32>,
) -> Result<(), DecodeError> {
    let binary = dis.binary();
    let mut pc = start;
    // The constant in eax, to recognise `mov eax, 1; int 0x80` (exit).
    let mut eax_const: Option<u32> = None;
    loop {
        if d.insns.contains_key(&pc) {
            return Ok(());
        }
        if d.insns.len() >= MAX_INSTRUCTIONS {
            return Err(DecodeError::TooLarge(scope.entry));
        }
        let ins = decode_one(binary, pc)?;
        if let Some(end) = check_overlap(binary, d, &ins)? {
            d.leaders.insert(end);
        }
        d.insns.insert(pc, ins);
        let next = ins.next_ip32();
        let mut follow = |d: &mut Decoded, target: u32| {
            d.leaders.insert(target);
            work.push(target);
        };
        let exit = match ins.flow_control() {
            FlowControl::Next if ins.mnemonic() == Mnemonic::Hlt => Some(vec![Successor::Halt]),
            FlowControl::Next => None,
            FlowControl::Interrupt => {
                let is_exit = ins.mnemonic() == Mnemonic::Int
                    && ins.immediate8() == 0x80
                    && matches!(eax_const, Some(SYS_EXIT | SYS_EXIT_GROUP));
                if ins.mnemonic() == Mnemonic::Int3 || is_exit {
                    Some(vec![Successor::Halt])
                } else {
                    None
                }
            }
            FlowControl::Exception => Some(vec![Successor::Halt]),
            FlowControl::Return => Some(vec![Successor::Return]),
            // `jmp 0`: a tail call to an undefined weak function (gcc -O2's
            // `return hook(x)`); it faults, as `call 0` does.
            FlowControl::UnconditionalBranch if call_target(binary, &ins) == CallTarget::Absent => {
                Some(vec![Successor::TailCall(CallTarget::Absent)])
            }
            FlowControl::UnconditionalBranch => {
                let to = branch_target(binary, &ins, "jump")?;
                if scope.is_tail_call(binary, to) {
                    Some(vec![Successor::TailCall(call_target(binary, &ins))])
                } else {
                    follow(d, to);
                    Some(vec![Successor::Jump(to)])
                }
            }
            FlowControl::ConditionalBranch => {
                let to = branch_target(binary, &ins, "jump")?;
                follow(d, to);
                follow(d, next);
                Some(vec![Successor::Taken(to), Successor::NotTaken(next)])
            }
            FlowControl::IndirectBranch => match tables.get(&pc).cloned() {
                Some(table) => {
                    let succs = table
                        .targets
                        .iter()
                        .enumerate()
                        .map(|(i, &t)| Successor::Case {
                            index: i as u32,
                            target: t,
                        })
                        .collect();
                    for &t in &table.targets {
                        follow(d, t);
                    }
                    d.exits.insert(pc, (succs, Some(table)));
                    return Ok(());
                }
                None => Some(vec![Successor::IndirectJump]),
            },
            FlowControl::Call | FlowControl::IndirectCall => {
                let absent = ins.flow_control() == FlowControl::Call && ins.near_branch32() == 0;
                if ins.flow_control() == FlowControl::Call && !absent {
                    branch_target(binary, &ins, "call")?;
                }
                let target = call_target(binary, &ins);
                // `call $+5` pushes its own end and goes on there: a way to
                // read `eip` (musl's `_start`), not a call.
                if target == CallTarget::Function(next) {
                    follow(d, next);
                    d.exits
                        .insert(pc, (vec![Successor::FallThrough(next)], None));
                    return Ok(());
                }
                // A call that ends the function's `.eh_frame` range is one
                // the compiler knew does not return (`__libc_message`): what
                // follows is padding or another function.
                let ends_range = dis
                    .unwind_end(scope.entry)
                    .is_some_and(|end| (scope.entry..end).contains(&pc) && next >= end);
                let returns = !ends_range
                    && !scope.stuck_calls.contains(&pc)
                    && (target == CallTarget::Function(scope.entry) || dis.call_returns(&target));
                let mut succs = vec![Successor::Call(target)];
                if returns {
                    follow(d, next);
                    succs.push(Successor::FallThrough(next));
                }
                Some(succs)
            }
            // `xbegin`: the transaction runs on; an abort resumes at the
            // operand (glibc's lock elision).
            FlowControl::XbeginXabortXend if ins.mnemonic() == Mnemonic::Xbegin => {
                let to = branch_target(binary, &ins, "jump")?;
                follow(d, to);
                follow(d, next);
                Some(vec![Successor::Taken(to), Successor::NotTaken(next)])
            }
            // `xend`, `xabort`: on (an abort goes where `xbegin` said).
            FlowControl::XbeginXabortXend => None,
        };
        eax_const = track_eax_constant(&ins, eax_const);
        if let Some(succs) = exit {
            d.exits.insert(pc, (succs, None));
            return Ok(());
        }
        pc = next;
    }
}

/// Follows `mov eax, imm` so that an `int 0x80` exit call is known to halt.
fn track_eax_constant(ins: &Instruction, before: Option<u32>) -> Option<u32> {
    let writes_eax = (0..ins.op_count()).any(|i| {
        ins.op_kind(i) == OpKind::Register && ins.op_register(i).full_register32() == Register::EAX
    }) || matches!(ins.mnemonic(), Mnemonic::Int | Mnemonic::Call);
    if ins.mnemonic() == Mnemonic::Mov
        && ins.op0_kind() == OpKind::Register
        && ins.op0_register() == Register::EAX
        && ins.op1_kind() == OpKind::Immediate32
    {
        Some(ins.immediate32())
    } else if writes_eax {
        None
    } else {
        before
    }
}

/// Phase 2: cuts decoded instructions into blocks at leaders and block exits.
fn form_blocks(mut d: Decoded) -> BTreeMap<u32, Block> {
    let mut blocks = BTreeMap::new();
    let leaders: Vec<u32> = d
        .leaders
        .iter()
        .copied()
        .filter(|a| d.insns.contains_key(a))
        .collect();
    for &start in &leaders {
        let mut instructions = Vec::new();
        let mut pc = start;
        let (successors, jump_table) = loop {
            let ins = d.insns[&pc];
            instructions.push(ins);
            if let Some(exit) = d.exits.remove(&pc) {
                break exit;
            }
            pc = ins.next_ip32();
            if d.leaders.contains(&pc) || !d.insns.contains_key(&pc) {
                break (vec![Successor::FallThrough(pc)], None);
            }
        };
        blocks.insert(
            start,
            Block {
                start,
                instructions,
                successors,
                jump_table,
            },
        );
    }
    blocks
}
