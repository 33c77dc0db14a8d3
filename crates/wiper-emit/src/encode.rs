//! Encoding a laid-out residual with iced's `BlockEncoder`.
//!
//! Every residual instruction gets a unique fake IP; branches between blocks
//! target the fake IP of the first instruction of their block, so the block
//! encoder relocates them (and picks short or near forms). Near calls and jumps
//! to addresses of the original binary keep their absolute targets and become
//! `rel32` from their new place. The final addresses come from
//! `RETURN_NEW_INSTRUCTION_OFFSETS`; the [`Line`]s are decoded back from the
//! bytes, so they show exactly what runs.

use std::collections::{BTreeMap, HashMap};

use iced_x86::{
    BlockEncoder, BlockEncoderOptions, Code, ConditionCode, Decoder, DecoderOptions, Encoder,
    FlowControl, Instruction, InstructionBlock, MemoryOperand, OpKind, Register,
};

use crate::layout::{order, Blocks};
use crate::{EmitError, Plan, THUNK_SLOT};
use wiper_residual::{Block, Item, Label, Origin, Residual, Terminator};
use wiper_x86::Reg;

/// One instruction of the encoded code (a PC thunk's or the residual's), as it
/// will run.
#[derive(Clone, Debug, PartialEq)]
pub struct Line {
    /// Its link-time address.
    pub address: u32,
    /// The instruction decoded from the output bytes at `address` (so branch
    /// targets are final addresses).
    pub instruction: Instruction,
    /// Where it came from; `None` for PC thunks and for the `ud2` trap placed
    /// after an `Exit` block whose last instruction could fall through.
    pub origin: Option<Origin>,
    /// The block that starts with this instruction.
    pub block: Option<Label>,
    /// Blocks that emitted no instruction (an empty block whose `Jump` was
    /// elided) and whose label therefore also resolves here.
    pub empty_blocks: Vec<Label>,
}

/// The encoded residual: the bytes of the new segment after its data.
#[derive(Clone, Debug, PartialEq)]
pub struct Encoded {
    /// Bytes loaded at `load_vaddr`: the PC thunk area (PIE only, `int3`
    /// padded), then the code.
    pub code: Vec<u8>,
    /// Where `code` is loaded (= `Plan::thunk_vaddr`).
    pub load_vaddr: u32,
    /// Where the residual code (after the thunks) starts (= `Plan::code_vaddr`).
    pub code_vaddr: u32,
    /// Address of the residual's entry block (the specialized function).
    pub entry_vaddr: u32,
    /// Every instruction, thunks first, in address order.
    pub lines: Vec<Line>,
    /// Number of residual instructions (thunks and traps excluded).
    pub instruction_count: usize,
    /// Address of every emitted block (unreachable blocks are dropped).
    pub labels: BTreeMap<Label, u32>,
    /// The PC thunks: the register each one loads and its address.
    pub thunks: Vec<(Register, u32)>,
}

impl Encoded {
    /// Size in bytes of the residual code (from `code_vaddr` to the end).
    pub fn code_size(&self) -> u32 {
        (self.code.len() as u32).saturating_sub(self.code_vaddr.wrapping_sub(self.load_vaddr))
    }
}

/// One instruction before label resolution.
enum Pending {
    /// Complete already.
    Fixed(Instruction),
    /// A `jmp`, `jcc` or `call` whose target is a residual block.
    ToLabel(Code, Label),
}

/// Where a block's instructions are collected.
struct Out<'a> {
    pending: &'a mut Vec<Pending>,
    origins: &'a mut Vec<Option<Origin>>,
}

impl Out<'_> {
    fn push(&mut self, p: Pending, origin: Option<Origin>) {
        self.pending.push(p);
        self.origins.push(origin);
    }
}

/// Lays out and encodes `residual` for the segment `plan` describes.
///
/// Blocks are ordered depth-first from the entry with fall-through preferred
/// (unreachable ones are dropped); a `Jump` to the next block disappears, a
/// `Branch` becomes one `jcc` when either target is next (the condition
/// inverted when it is `taken`), else `jcc taken; jmp not_taken`.
/// `Item::Address` is `mov reg, imm32`, or in a PIE `call thunk_reg; lea reg,
/// [reg + (addr - L)]`, where the thunk leaves the run-time address of its own
/// `L` in the register; flags and other registers are preserved. An `Exit` block
/// whose last instruction can fall through gets a `ud2` after it.
pub fn encode(plan: &Plan, residual: &Residual) -> Result<Encoded, EmitError> {
    let blocks = Blocks::new(residual)?;
    check_data_and_order(plan, residual)?;
    let layout = order(&blocks);
    let thunks = thunk_slots(plan, layout.iter().map(|l| blocks.by_label[l]))?;
    let thunk_of: HashMap<Register, u32> = thunks.iter().copied().collect();

    // 1. Instructions with block targets still symbolic.
    let sym = symbolic(plan, &blocks, &layout, &thunk_of)?;

    // 2. Fake IPs, then real instructions.
    let instructions = resolve(plan, &sym, &thunks)?;

    // 3. Encode and find where each instruction went.
    let result = BlockEncoder::encode(
        32,
        InstructionBlock::new(&instructions, u64::from(plan.code_vaddr)),
        BlockEncoderOptions::RETURN_NEW_INSTRUCTION_OFFSETS,
    )
    .map_err(|e| EmitError::Encode(one_line(e)))?;
    let bytes = result.code_buffer;
    let starts = instruction_starts(&result.new_instruction_offsets, &bytes, plan.code_vaddr)?;

    // 4. Lines: thunks, then the code decoded back.
    let (mut code, mut lines) = thunk_area(plan, &thunks)?;
    let instruction_count = code_lines(plan, &sym, &layout, &bytes, &starts, &mut lines)?;
    let mut labels = BTreeMap::new();
    for &label in &layout {
        labels.insert(label, plan.code_vaddr + starts[sym.first_index(label)?]);
    }
    code.extend_from_slice(&bytes);
    Ok(Encoded {
        code,
        load_vaddr: plan.thunk_vaddr,
        code_vaddr: plan.code_vaddr,
        entry_vaddr: labels[&blocks.entry],
        lines,
        instruction_count,
        labels,
        thunks,
    })
}

/// Rejects data larger than the plan's room, data the code expects
/// elsewhere, and out-of-order plan addresses.
fn check_data_and_order(plan: &Plan, residual: &Residual) -> Result<(), EmitError> {
    if residual.data.len() as u64 > u64::from(plan.data_room()) {
        return Err(EmitError::DataTooLarge {
            len: residual.data.len(),
            room: plan.data_room(),
        });
    }
    if !residual.data.is_empty() && residual.data_vaddr != plan.data_vaddr {
        return Err(EmitError::Mismatch(format!(
            "the residual's data belongs at {:#x} but the plan puts it at {:#x}",
            residual.data_vaddr, plan.data_vaddr
        )));
    }
    if plan.thunk_vaddr > plan.code_vaddr || plan.data_vaddr > plan.thunk_vaddr {
        return Err(EmitError::Mismatch(
            "the plan's data, thunk and code addresses are out of order".to_string(),
        ));
    }
    Ok(())
}

/// The laid-out instructions with block targets still symbolic.
struct Symbolic {
    /// Every instruction, in layout order.
    pending: Vec<Pending>,
    /// The origin of each of `pending`.
    origins: Vec<Option<Origin>>,
    /// The range of `pending` each emitted block produced.
    block_range: HashMap<Label, (usize, usize)>,
}

impl Symbolic {
    /// The index of the instruction `l` resolves to.
    ///
    /// Every label resolves to an instruction: the layout's last block always
    /// emits one (a jump, or an Exit block's last instruction or trap).
    fn first_index(&self, l: Label) -> Result<usize, EmitError> {
        match self.block_range.get(&l) {
            Some(&(start, _)) if start < self.pending.len() => Ok(start),
            _ => Err(EmitError::Encode(format!("block {l} has no instruction"))),
        }
    }
}

/// Step 1: the instructions of the blocks of `layout`, in that order.
fn symbolic(
    plan: &Plan,
    blocks: &Blocks,
    layout: &[Label],
    thunk_of: &HashMap<Register, u32>,
) -> Result<Symbolic, EmitError> {
    let mut pending: Vec<Pending> = Vec::new();
    let mut origins: Vec<Option<Origin>> = Vec::new();
    let mut block_range: HashMap<Label, (usize, usize)> = HashMap::new();
    for (i, &label) in layout.iter().enumerate() {
        let next = layout.get(i + 1).copied();
        let block = blocks.by_label[&label];
        let start = pending.len();
        let mut out = Out {
            pending: &mut pending,
            origins: &mut origins,
        };
        push_items(&mut out, plan, thunk_of, block)?;
        push_terminator(&mut out, start, label, next, &block.terminator)?;
        block_range.insert(label, (start, pending.len()));
    }
    Ok(Symbolic {
        pending,
        origins,
        block_range,
    })
}

/// Pushes the instructions of `block`'s items.
fn push_items(
    out: &mut Out<'_>,
    plan: &Plan,
    thunk_of: &HashMap<Register, u32>,
    block: &Block,
) -> Result<(), EmitError> {
    for item in &block.items {
        match item {
            Item::Instr(ins, origin) => {
                check_instruction(ins, *origin)?;
                out.push(Pending::Fixed(*ins), Some(*origin));
            }
            Item::Address { reg, addr, origin } => {
                for ins in address(plan, thunk_of, *reg, *addr, *origin)? {
                    out.push(Pending::Fixed(ins), Some(*origin));
                }
            }
            Item::CallLabel(target, origin) => {
                out.push(
                    Pending::ToLabel(Code::Call_rel32_32, *target),
                    Some(*origin),
                );
            }
        }
    }
    Ok(())
}

/// Pushes the instructions of the terminator of block `label`, whose
/// instructions start at `start` and which `next` follows.
fn push_terminator(
    out: &mut Out<'_>,
    start: usize,
    label: Label,
    next: Option<Label>,
    terminator: &Terminator,
) -> Result<(), EmitError> {
    match terminator {
        Terminator::Exit => {
            let falls_through = match out.pending.last() {
                Some(Pending::Fixed(ins)) if out.pending.len() > start => !matches!(
                    ins.flow_control(),
                    FlowControl::Return
                        | FlowControl::UnconditionalBranch
                        | FlowControl::IndirectBranch
                        | FlowControl::Exception
                ),
                _ => true,
            };
            if falls_through {
                out.push(Pending::Fixed(Instruction::with(Code::Ud2)), None);
            }
        }
        Terminator::Jump(target, origin) => {
            if next != Some(*target) {
                out.push(Pending::ToLabel(Code::Jmp_rel32_32, *target), Some(*origin));
            }
        }
        Terminator::Branch {
            cc,
            taken,
            not_taken,
            origin,
        } => {
            let jcc = jcc_code(*cc).ok_or(wiper_residual::ResidualError::NoCondition(label))?;
            let o = Some(*origin);
            if taken == not_taken {
                if next != Some(*taken) {
                    out.push(Pending::ToLabel(Code::Jmp_rel32_32, *taken), o);
                }
            } else if next == Some(*not_taken) {
                out.push(Pending::ToLabel(jcc, *taken), o);
            } else if next == Some(*taken) {
                out.push(Pending::ToLabel(jcc.negate_condition_code(), *not_taken), o);
            } else {
                out.push(Pending::ToLabel(jcc, *taken), o);
                out.push(Pending::ToLabel(Code::Jmp_rel32_32, *not_taken), o);
            }
        }
    }
    Ok(())
}

/// Step 2: gives every instruction a fake IP and resolves block targets to them.
fn resolve(
    plan: &Plan,
    sym: &Symbolic,
    thunks: &[(Register, u32)],
) -> Result<Vec<Instruction>, EmitError> {
    let count = sym.pending.len();
    let externals: Vec<u32> = sym
        .pending
        .iter()
        .filter_map(|p| match p {
            Pending::Fixed(ins) if is_near_branch(ins) => Some(ins.near_branch_target() as u32),
            _ => None,
        })
        .chain(thunks.iter().map(|&(_, a)| a))
        .collect();
    let fake_base = fake_ip_base(plan.code_vaddr, count, &externals)?;
    let mut instructions = Vec::with_capacity(count);
    for (i, p) in sym.pending.iter().enumerate() {
        let mut ins = match p {
            Pending::Fixed(ins) => *ins,
            Pending::ToLabel(code, target) => {
                let t = fake_base + sym.first_index(*target)? as u64;
                Instruction::with_branch(*code, t).map_err(|e| EmitError::Encode(one_line(e)))?
            }
        };
        ins.set_ip(fake_base + i as u64);
        instructions.push(ins);
    }
    Ok(instructions)
}

/// The `int3`-padded thunk area and the lines of its thunks.
fn thunk_area(plan: &Plan, thunks: &[(Register, u32)]) -> Result<(Vec<u8>, Vec<Line>), EmitError> {
    let mut code = vec![0xcc; (plan.code_vaddr - plan.thunk_vaddr) as usize];
    for &(reg, addr) in thunks {
        let at = (addr - plan.thunk_vaddr) as usize;
        code[at..at + 7].copy_from_slice(&thunk_bytes(reg));
    }
    let mut lines = Vec::new();
    for &(_, addr) in thunks {
        let at = (addr - plan.thunk_vaddr) as usize;
        for ins in decode(&code[at..at + 7], addr)? {
            lines.push(Line {
                address: ins.ip32(),
                instruction: ins,
                origin: None,
                block: None,
                empty_blocks: Vec::new(),
            });
        }
    }
    Ok((code, lines))
}

/// Appends the lines of the encoded `bytes` (`starts` of each instruction) to
/// `lines`; returns the number of residual instructions.
fn code_lines(
    plan: &Plan,
    sym: &Symbolic,
    layout: &[Label],
    bytes: &[u8],
    starts: &[u32],
    lines: &mut Vec<Line>,
) -> Result<usize, EmitError> {
    let count = sym.pending.len();
    let mut starting_here: HashMap<usize, (Option<Label>, Vec<Label>)> = HashMap::new();
    for &label in layout {
        let (start, end) = sym.block_range[&label];
        let entry = starting_here.entry(sym.first_index(label)?).or_default();
        if end > start {
            entry.0 = Some(label);
        } else {
            entry.1.push(label);
        }
    }
    let mut owner = 0usize;
    let mut instruction_count = 0;
    for ins in decode(bytes, plan.code_vaddr)? {
        let offset = ins.ip32() - plan.code_vaddr;
        while owner + 1 < count && starts[owner + 1] <= offset {
            owner += 1;
        }
        let (block, empty_blocks) = if starts[owner] == offset {
            starting_here.remove(&owner).unwrap_or_default()
        } else {
            (None, Vec::new())
        };
        if sym.origins[owner].is_some() {
            instruction_count += 1;
        }
        lines.push(Line {
            address: ins.ip32(),
            instruction: ins,
            origin: sym.origins[owner],
            block,
            empty_blocks,
        });
    }
    Ok(instruction_count)
}

/// The thunk slot of every register some `Item::Address` of the emitted
/// `blocks` loads (PIE only): in encoding order, packed from
/// `plan.thunk_vaddr`. A thunk can load any 32-bit register but `esp`.
fn thunk_slots<'a>(
    plan: &Plan,
    blocks: impl Iterator<Item = &'a Block>,
) -> Result<Vec<(Register, u32)>, EmitError> {
    let mut used = [false; Reg::ALL.len()];
    for block in blocks {
        for item in &block.items {
            if let Item::Address { reg, origin, .. } = item {
                let bad = || EmitError::AddressRegister {
                    reg: format!("{reg:?}").to_lowercase(),
                    origin: origin.address(),
                };
                let thunk_reg = Reg::from_iced(*reg).filter(|r| r.to_iced() == *reg);
                match thunk_reg.filter(|&r| r != Reg::Esp) {
                    Some(r) => used[r.index()] = true,
                    None if *reg == Register::ESP && !plan.pie => {}
                    None => return Err(bad()),
                }
            }
        }
    }
    if !plan.pie {
        return Ok(Vec::new());
    }
    let mut slots = Vec::new();
    let mut addr = plan.thunk_vaddr;
    for r in Reg::ALL {
        if used[r.index()] {
            slots.push((r.to_iced(), addr));
            addr += THUNK_SLOT;
        }
    }
    if addr > plan.code_vaddr {
        return Err(EmitError::Mismatch(
            "the plan leaves no room for the PC thunks".to_string(),
        ));
    }
    Ok(slots)
}

/// `call next; next: pop reg; ret`: leaves the run-time address of `next`
/// (the thunk's address + 5) in `reg`.
fn thunk_bytes(reg: Register) -> [u8; 7] {
    let number = reg.number() as u8;
    [0xe8, 0, 0, 0, 0, 0x58 + number, 0xc3]
}

/// The instructions of `Item::Address`.
fn address(
    plan: &Plan,
    thunk_of: &HashMap<Register, u32>,
    reg: Register,
    addr: u32,
    origin: Origin,
) -> Result<Vec<Instruction>, EmitError> {
    let fail = |e: iced_x86::IcedError| EmitError::Instruction {
        origin: origin.address(),
        message: one_line(e),
    };
    if !plan.pie {
        return Ok(vec![
            Instruction::with2(Code::Mov_r32_imm32, reg, addr).map_err(fail)?
        ]);
    }
    // thunk_slots checked every Address register of a PIE.
    let thunk = thunk_of[&reg];
    let here = thunk + 5;
    let displacement = addr.wrapping_sub(here) as i32;
    Ok(vec![
        Instruction::with_branch(Code::Call_rel32_32, u64::from(thunk)).map_err(fail)?,
        Instruction::with2(
            Code::Lea_r32_m,
            reg,
            MemoryOperand::with_base_displ(reg, i64::from(displacement)),
        )
        .map_err(fail)?,
    ])
}

/// Whether the instruction's first operand is a direct 32-bit near branch target.
fn is_near_branch(ins: &Instruction) -> bool {
    ins.op0_kind() == OpKind::NearBranch32
}

/// Rejects invalid instructions and, for non-branches, ones the encoder refuses,
/// so the error names the item's origin.
fn check_instruction(ins: &Instruction, origin: Origin) -> Result<(), EmitError> {
    let fail = |message: String| EmitError::Instruction {
        origin: origin.address(),
        message,
    };
    if ins.code() == Code::INVALID {
        return Err(fail("invalid instruction".to_string()));
    }
    if is_near_branch(ins) {
        return Ok(());
    }
    if matches!(
        ins.op0_kind(),
        OpKind::NearBranch16 | OpKind::NearBranch64 | OpKind::FarBranch16 | OpKind::FarBranch32
    ) {
        return Err(fail(
            "only direct branches with a 32-bit target are supported".to_string(),
        ));
    }
    Encoder::new(32)
        .encode(ins, 0)
        .map(|_| ())
        .map_err(|e| fail(one_line(e)))
}

/// The `jcc rel32` for a condition, `None` for `ConditionCode::None`.
fn jcc_code(cc: ConditionCode) -> Option<Code> {
    Some(match cc {
        ConditionCode::None => return None,
        ConditionCode::o => Code::Jo_rel32_32,
        ConditionCode::no => Code::Jno_rel32_32,
        ConditionCode::b => Code::Jb_rel32_32,
        ConditionCode::ae => Code::Jae_rel32_32,
        ConditionCode::e => Code::Je_rel32_32,
        ConditionCode::ne => Code::Jne_rel32_32,
        ConditionCode::be => Code::Jbe_rel32_32,
        ConditionCode::a => Code::Ja_rel32_32,
        ConditionCode::s => Code::Js_rel32_32,
        ConditionCode::ns => Code::Jns_rel32_32,
        ConditionCode::p => Code::Jp_rel32_32,
        ConditionCode::np => Code::Jnp_rel32_32,
        ConditionCode::l => Code::Jl_rel32_32,
        ConditionCode::ge => Code::Jge_rel32_32,
        ConditionCode::le => Code::Jle_rel32_32,
        ConditionCode::g => Code::Jg_rel32_32,
    })
}

/// A base for `count` consecutive fake IPs that no external branch target
/// (an original-binary address or a thunk) falls into. The code's own future
/// addresses are tried first: no original target can lie there.
fn fake_ip_base(code_vaddr: u32, count: usize, externals: &[u32]) -> Result<u64, EmitError> {
    let candidates = [
        u64::from(code_vaddr),
        0x1000_0000,
        0x4000_0000,
        0x7000_0000,
        0xa000_0000,
        0xd000_0000,
    ];
    let n = count as u64;
    candidates
        .into_iter()
        .find(|&base| {
            base + n <= u64::from(u32::MAX)
                && !externals
                    .iter()
                    .any(|&t| u64::from(t) >= base && u64::from(t) < base + n)
        })
        .ok_or_else(|| EmitError::Encode("no free range of fake addresses".to_string()))
}

/// The start offset of every input instruction in the encoded bytes.
///
/// The block encoder reports `u32::MAX` for an instruction it rewrote into
/// several (a `loop`/`jecxz` whose target is out of `rel8` range); such an
/// instruction starts where its predecessor ends.
fn instruction_starts(offsets: &[u32], bytes: &[u8], base: u32) -> Result<Vec<u32>, EmitError> {
    let mut starts = Vec::with_capacity(offsets.len());
    for (i, &off) in offsets.iter().enumerate() {
        if off != u32::MAX {
            starts.push(off);
            continue;
        }
        let start = match i.checked_sub(1) {
            None => 0,
            Some(p) if offsets[p] != u32::MAX => {
                let prev = starts[p];
                let ins = decode(&bytes[prev as usize..], base + prev)?;
                prev + ins.first().map_or(0, |i| i.len() as u32)
            }
            Some(_) => {
                return Err(EmitError::Encode(
                    "two consecutive rewritten short branches are not supported".to_string(),
                ))
            }
        };
        starts.push(start);
    }
    Ok(starts)
}

/// Decodes `bytes` loaded at `ip` into instructions; an undecodable byte is an
/// internal error of the emitter.
fn decode(bytes: &[u8], ip: u32) -> Result<Vec<Instruction>, EmitError> {
    let mut out = Vec::new();
    for ins in Decoder::with_ip(32, bytes, u64::from(ip), DecoderOptions::NONE).iter() {
        if ins.is_invalid() {
            return Err(EmitError::Encode(format!(
                "the encoded bytes at {:#x} do not decode",
                ins.ip32()
            )));
        }
        out.push(ins);
    }
    Ok(out)
}

/// An error message on one line.
pub(crate) fn one_line(e: impl std::fmt::Display) -> String {
    e.to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONDITIONS: [ConditionCode; 16] = [
        ConditionCode::o,
        ConditionCode::no,
        ConditionCode::b,
        ConditionCode::ae,
        ConditionCode::e,
        ConditionCode::ne,
        ConditionCode::be,
        ConditionCode::a,
        ConditionCode::s,
        ConditionCode::ns,
        ConditionCode::p,
        ConditionCode::np,
        ConditionCode::l,
        ConditionCode::ge,
        ConditionCode::le,
        ConditionCode::g,
    ];

    #[test]
    fn jcc_codes_have_their_condition_and_negate_in_pairs() {
        assert_eq!(jcc_code(ConditionCode::None), None);
        for (i, cc) in CONDITIONS.iter().enumerate() {
            let code = jcc_code(*cc).unwrap();
            let ins = Instruction::with_branch(code, 0x1000).unwrap();
            assert_eq!(ins.condition_code(), *cc);
            // The table lists each condition next to its negation.
            let negation = CONDITIONS[i ^ 1];
            assert_eq!(code.negate_condition_code(), jcc_code(negation).unwrap());
        }
    }

    #[test]
    fn fake_ips_avoid_external_targets() {
        assert_eq!(fake_ip_base(0x5000, 10, &[0x1000]).unwrap(), 0x5000);
        assert_eq!(fake_ip_base(0x5000, 10, &[0x5009]).unwrap(), 0x1000_0000);
        assert_eq!(fake_ip_base(0x5000, 10, &[0x500a]).unwrap(), 0x5000);
        let everywhere = [
            0x5000,
            0x1000_0000,
            0x4000_0000,
            0x7000_0000,
            0xa000_0000,
            0xd000_0000,
        ];
        assert!(fake_ip_base(0x5000, 1, &everywhere).is_err());
    }

    #[test]
    fn thunks_load_their_own_return_address() {
        let bytes = thunk_bytes(Register::ESI);
        let lines = decode(&bytes, 0x100).unwrap();
        let text: Vec<String> = lines.iter().map(|i| i.to_string()).collect();
        assert_eq!(text, ["call 00000105h", "pop esi", "ret"]);
    }
}
