//! The stack frame of a residual function: the stack pointer's offset from
//! its value at entry before every item, and the frame slots that can live
//! in a register instead.
//!
//! A slot is promotable when every access to it is an explicit `[esp+d]`
//! operand of one size (4 bytes, or 1 byte for a slot that can live in the
//! low byte of `eax`, `ecx`, `edx` or `ebx`) of an instruction that accepts
//! a register in its place,
//! no other access overlaps it, and it is not the return address: slots
//! below the entry stack pointer are the function's own frame, slots above
//! its arguments (both dead when it returns; an argument's incoming value
//! is loaded into its register on entry). The analysis gives up
//! (returns `None`) whenever it could be unsound: calls (a callee may read
//! the frame), jumps into the original code (which reads the frame from
//! memory), a frame address that escapes into a register, an indexed
//! frame access (`[esp+eax*4+8]`), or a stack pointer it cannot follow.

use std::collections::HashMap;

use iced_x86::{Code, Instruction, MemoryOperand, Mnemonic, OpKind, Register};
use wiper_residual::{Item, Residual, Terminator};

use crate::effects::{memory_operand, ARITHMETIC, MAX_SLOTS};
use crate::liveness::{block_index, successors};

/// The frame facts of a residual.
#[derive(Debug, Default)]
pub struct Frame {
    /// Per block (by index in `Residual::blocks`) and item: the promotable
    /// slot the item's explicit memory operand accesses.
    pub slot_of: Vec<Vec<Option<usize>>>,
    /// The promotable slots, most accessed first.
    pub slots: Vec<Slot>,
    /// Per block and item: the stack pointer's offset from its entry value
    /// before the item (empty for blocks the entry does not reach).
    pub esp: Vec<Vec<i32>>,
}

/// A promotable frame slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot {
    /// Offset from the entry stack pointer.
    pub offset: i32,
    /// Size in bytes: 4, or 1 (a byte slot, for a byte register).
    pub size: i32,
}

/// One access to the frame.
struct Access {
    offset: i32,
    size: i32,
    /// A 4-byte explicit operand of an [`ARITHMETIC`] instruction or `push`,
    /// or a 1-byte one of an [`ARITHMETIC`] instruction, `movzx` or `movsx`.
    promotable: bool,
    /// Where: (block index, item index), for explicit accesses.
    at: Option<(usize, usize)>,
}

/// How an instruction moves the stack pointer, or `None` if the analysis
/// cannot follow it (or the frame's address escapes through it).
fn esp_delta(ins: &Instruction) -> Option<i32> {
    let esp_operand = (0..ins.op_count())
        .any(|i| ins.op_kind(i) == OpKind::Register && ins.op_register(i) == Register::ESP);
    if ins.mnemonic() == Mnemonic::Pop
        && memory_operand(ins).is_some()
        && ins.memory_base() == Register::ESP
    {
        return None; // its address is computed after the pop
    }
    match ins.mnemonic() {
        Mnemonic::Push | Mnemonic::Pop | Mnemonic::Pushfd | Mnemonic::Popfd => {
            if esp_operand || ins.stack_pointer_increment().abs() != 4 {
                return None;
            }
            Some(ins.stack_pointer_increment())
        }
        Mnemonic::Lea if ins.op0_register() == Register::ESP => {
            (ins.memory_base() == Register::ESP && ins.memory_index() == Register::None)
                .then(|| ins.memory_displacement32() as i32)
        }
        Mnemonic::Lea
            if ins.memory_base() == Register::ESP || ins.memory_index() == Register::ESP =>
        {
            None
        }
        Mnemonic::Add | Mnemonic::Sub
            if ins.op0_kind() == OpKind::Register && ins.op0_register() == Register::ESP =>
        {
            let imm = match ins.op1_kind() {
                OpKind::Immediate8to32 | OpKind::Immediate32 => ins.immediate(1) as i32,
                _ => return None,
            };
            Some(if ins.mnemonic() == Mnemonic::Add {
                imm
            } else {
                imm.wrapping_neg()
            })
        }
        Mnemonic::Ret => Some(0),
        _ if esp_operand || ins.stack_pointer_increment() != 0 => None,
        _ => Some(0),
    }
}

/// Analyses the frame of `residual`, or `None` if it must be left alone.
pub fn analyze(residual: &Residual) -> Option<Frame> {
    let entry = residual.entry?;
    let index = block_index(residual);
    let mut block_esp: Vec<Option<i32>> = vec![None; residual.blocks.len()];
    let mut esp_before: Vec<Vec<i32>> = vec![Vec::new(); residual.blocks.len()];
    let mut accesses: Vec<Access> = Vec::new();
    let mut work = vec![(*index.get(&entry)?, 0i32)];
    while let Some((b, esp_in)) = work.pop() {
        match block_esp[b] {
            Some(e) if e == esp_in => continue,
            Some(_) => return None, // reached with two stack depths
            None => block_esp[b] = Some(esp_in),
        }
        let block = &residual.blocks[b];
        let mut esp = esp_in;
        esp_before[b] = Vec::with_capacity(block.items.len());
        for (k, item) in block.items.iter().enumerate() {
            esp_before[b].push(esp);
            let ins = match item {
                Item::Instr(ins, _) => ins,
                Item::Address { .. } => continue,
                Item::CallLabel(..) => return None,
            };
            use iced_x86::FlowControl as F;
            match ins.flow_control() {
                // Code outside the residual would read promoted slots from
                // memory.
                F::Call
                | F::IndirectCall
                | F::UnconditionalBranch
                | F::IndirectBranch
                | F::ConditionalBranch
                | F::XbeginXabortXend => return None,
                F::Next | F::Return | F::Interrupt | F::Exception => {}
            }
            let delta = esp_delta(ins)?;
            if memory_operand(ins).is_some() && ins.mnemonic() != Mnemonic::Lea {
                if ins.memory_base() == Register::ESP && ins.memory_index() != Register::None {
                    return None; // an indexed frame access may touch any slot
                }
                if ins.memory_base() == Register::ESP {
                    let size = ins.memory_size().size() as i32;
                    let m = ins.mnemonic();
                    let promotable = match size {
                        4 => ARITHMETIC.contains(&m) || m == Mnemonic::Push,
                        1 => {
                            ARITHMETIC.contains(&m)
                                || matches!(m, Mnemonic::Movzx | Mnemonic::Movsx)
                        }
                        _ => false,
                    };
                    accesses.push(Access {
                        offset: esp.wrapping_add(ins.memory_displacement32() as i32),
                        size: size.max(1),
                        promotable,
                        at: Some((b, k)),
                    });
                }
            }
            match ins.mnemonic() {
                Mnemonic::Push | Mnemonic::Pushfd => accesses.push(Access {
                    offset: esp - 4,
                    size: 4,
                    promotable: false,
                    at: None,
                }),
                Mnemonic::Pop | Mnemonic::Popfd => accesses.push(Access {
                    offset: esp,
                    size: 4,
                    promotable: false,
                    at: None,
                }),
                _ => {}
            }
            esp = esp.wrapping_add(delta);
        }
        if block.terminator == Terminator::Exit {
            let returns = matches!(block.items.last(), Some(Item::Instr(i, _)) if i.mnemonic() == Mnemonic::Ret);
            if !returns {
                return None; // leaves into the original code
            }
        }
        for l in successors(&block.terminator) {
            work.push((*index.get(&l)?, esp));
        }
    }
    let mut frame = promotable_slots(residual, &accesses);
    frame.esp = esp_before;
    Some(frame)
}

/// Picks the promotable slots among `accesses`.
fn promotable_slots(residual: &Residual, accesses: &[Access]) -> Frame {
    let mut candidates: HashMap<(i32, i32), usize> = HashMap::new();
    for a in accesses {
        // Below the entry stack pointer: the function's own frame; from 4
        // up: its arguments, which the callee owns in the i386 System V
        // ABI (dead when it returns). Offset 0 is the return address.
        if a.promotable && (a.offset < 0 || a.offset >= 4) {
            *candidates.entry((a.offset, a.size)).or_default() += 1;
        }
    }
    // A candidate fails if any access at it is not promotable or any other
    // access overlaps it.
    for a in accesses {
        candidates.retain(|&(off, size), _| {
            let overlaps = a.offset < off + size && off < a.offset + a.size;
            !overlaps || (a.offset == off && a.size == size && a.promotable)
        });
    }
    let mut slots: Vec<(Slot, usize)> = candidates
        .into_iter()
        .map(|((offset, size), n)| (Slot { offset, size }, n))
        .collect();
    slots.sort_by_key(|&(slot, n)| (std::cmp::Reverse(n), slot.offset));
    slots.truncate(MAX_SLOTS);
    let number: HashMap<i32, usize> = slots
        .iter()
        .enumerate()
        .map(|(i, &(slot, _))| (slot.offset, i))
        .collect();
    let mut slot_of: Vec<Vec<Option<usize>>> = residual
        .blocks
        .iter()
        .map(|b| vec![None; b.items.len()])
        .collect();
    for a in accesses {
        if let (Some((b, k)), Some(&s)) = (a.at, number.get(&a.offset)) {
            slot_of[b][k] = Some(s);
        }
    }
    Frame {
        slot_of,
        slots: slots.into_iter().map(|(slot, _)| slot).collect(),
        esp: Vec::new(),
    }
}

/// The frame offset of the explicit `[esp+d]` operand of `ins`, with the
/// stack pointer at `esp` (relative to its entry value), if it has one.
fn esp_operand_offset(ins: &Instruction, esp: i32) -> Option<i32> {
    (memory_operand(ins).is_some()
        && ins.mnemonic() != Mnemonic::Lea
        && ins.memory_base() == Register::ESP
        && ins.memory_index() == Register::None)
        .then(|| esp.wrapping_add(ins.memory_displacement32() as i32))
}

/// Splits each `mov dword [esp+d], imm` whose bytes are also accessed one
/// at a time (a byte variable whose initial value was materialized with
/// its neighbours) into four byte stores, so that the byte can become a
/// byte slot and the other stores can die. Returns whether it split any.
pub fn split_word_stores(residual: &mut Residual, frame: &Frame) -> bool {
    let mut byte_offsets = std::collections::HashSet::new();
    for (block, esps) in residual.blocks.iter().zip(&frame.esp) {
        for (item, &esp) in block.items.iter().zip(esps) {
            if let Item::Instr(ins, _) = item {
                if ins.memory_size().size() == 1 {
                    if let Some(off) = esp_operand_offset(ins, esp) {
                        byte_offsets.insert(off);
                    }
                }
            }
        }
    }
    let mut changed = false;
    for (block, esps) in residual.blocks.iter_mut().zip(&frame.esp) {
        if esps.is_empty() {
            continue;
        }
        let mut items = Vec::with_capacity(block.items.len());
        for (item, &esp) in std::mem::take(&mut block.items).into_iter().zip(esps) {
            let split = match &item {
                Item::Instr(ins, origin) if ins.code() == Code::Mov_rm32_imm32 => {
                    esp_operand_offset(ins, esp)
                        .filter(|off| (0..4).any(|i| byte_offsets.contains(&(off + i))))
                        .map(|_| (*ins, *origin))
                }
                _ => None,
            };
            let Some((ins, origin)) = split else {
                items.push(item);
                continue;
            };
            let value = ins.immediate32();
            for i in 0..4u32 {
                let byte = MemoryOperand::with_base_displ(
                    Register::ESP,
                    i64::from(ins.memory_displacement32() as i32) + i64::from(i),
                );
                let store = Instruction::with2(Code::Mov_rm8_imm8, byte, (value >> (8 * i)) & 0xff)
                    .expect("mov byte [esp+d], imm8 is encodable");
                items.push(Item::Instr(store, origin));
            }
            changed = true;
        }
        block.items = items;
    }
    changed
}

#[cfg(test)]
mod tests {
    use iced_x86::code_asm::*;

    use crate::testutil::{after, function};

    /// `frame::split_word_stores` after the analysis.
    fn split(r: wiper_residual::Residual) -> String {
        after(r, |r, _| {
            let f = super::analyze(r).expect("a frame");
            super::split_word_stores(r, &f)
        })
    }

    /// A block reached with two stack depths (after a `push` on one path
    /// only) has no frame; an address computed from another register
    /// (`lea eax,[ebx+4]`) is no obstacle, one from `esp` is.
    #[test]
    fn frames_need_one_depth_per_block_and_no_escaping_address() {
        use crate::testutil::{asm, block, branch, jump, residual};
        use wiper_residual::Terminator;
        let ret = || block(2, asm(|a| a.ret()), Terminator::Exit);
        let depth = |pushed: bool| {
            residual(vec![
                block(
                    0,
                    asm(|a| a.test(eax, eax)),
                    branch(iced_x86::ConditionCode::e, 1, 2),
                ),
                block(
                    1,
                    asm(|a| if pushed { a.push(ebx) } else { a.mov(ebx, 1) }),
                    jump(2),
                ),
                ret(),
            ])
        };
        assert!(super::analyze(&depth(false)).is_some());
        assert!(super::analyze(&depth(true)).is_none());
        let address = |base: AsmRegister32| {
            function(|a| {
                a.lea(eax, ptr(base + 4))?;
                a.ret()
            })
        };
        assert!(super::analyze(&address(ebx)).is_some());
        assert!(super::analyze(&address(esp)).is_none());
    }

    /// The stack pointer copied into a register (`mov ecx,esp`) or pushed
    /// (`push esp`, then popped into `ecx`) lets the frame's address
    /// escape: no frame.
    #[test]
    fn a_copied_or_pushed_stack_pointer_has_no_frame() {
        let copied = function(|a| {
            a.lea(esp, ptr(esp - 4))?;
            a.mov(dword_ptr(esp), eax)?;
            a.mov(ecx, esp)?;
            a.mov(dword_ptr(ecx), edx)?;
            a.add(eax, dword_ptr(esp))?;
            a.lea(esp, ptr(esp + 4))?;
            a.ret()
        });
        let pushed = function(|a| {
            a.lea(esp, ptr(esp - 4))?;
            a.mov(dword_ptr(esp), eax)?;
            a.push(esp)?;
            a.pop(ecx)?;
            a.mov(dword_ptr(ecx), edx)?;
            a.add(eax, dword_ptr(esp))?;
            a.lea(esp, ptr(esp + 4))?;
            a.ret()
        });
        assert!(super::analyze(&copied).is_none());
        assert!(super::analyze(&pushed).is_none());
    }

    /// A frame of more slots than the location sets have bits for (120
    /// dwords): the analysis keeps as many as fit, and dead stores to
    /// them still go (the first store to `[esp]`, overwritten unread).
    #[test]
    fn a_frame_with_more_slots_than_location_bits_is_cleaned_up() {
        let f = function(|a| {
            a.lea(esp, ptr(esp - 0x1e0))?;
            a.mov(dword_ptr(esp), 1)?;
            for k in 0..120 {
                a.mov(dword_ptr(esp + 4 * k), eax)?;
            }
            for k in 0..120 {
                a.add(ebx, dword_ptr(esp + 4 * k))?;
            }
            a.lea(esp, ptr(esp + 0x1e0))?;
            a.ret()
        });
        let before = f.blocks[0].items.len();
        let mut r = f;
        let frame = super::analyze(&r).expect("a frame");
        let mut calc = crate::effects::EffectsOf::for_residual(&r);
        crate::cleanup::eliminate_dead(&mut r, &mut calc, Some(&frame.slot_of));
        assert_eq!(r.blocks[0].items.len(), before - 1);
        assert!(!crate::testutil::listing(&r).contains("],1\n"));
    }

    #[test]
    fn a_dword_constant_over_byte_slots_is_split() {
        let f = function(|a| {
            a.lea(esp, ptr(esp - 8))?;
            a.mov(dword_ptr(esp + 4), 0x0102_0304)?;
            a.movzx(eax, byte_ptr(esp + 5))?;
            a.lea(esp, ptr(esp + 8))?;
            a.ret()
        });
        insta::assert_snapshot!(split(f), @"
        L0:
          lea esp,[esp-8]
          mov byte [esp+4],4
          mov byte [esp+5],3
          mov byte [esp+6],2
          mov byte [esp+7],1
          movzx eax,byte [esp+5]
          lea esp,[esp+8]
          ret
          exit
        ");
    }

    /// Near miss: no byte of the dword is accessed alone (the byte read
    /// is in the slot below).
    #[test]
    fn a_dword_constant_not_over_byte_slots_stays() {
        let f = function(|a| {
            a.lea(esp, ptr(esp - 8))?;
            a.mov(dword_ptr(esp + 4), 0x0102_0304)?;
            a.movzx(eax, byte_ptr(esp + 3))?;
            a.add(eax, dword_ptr(esp + 4))?;
            a.lea(esp, ptr(esp + 8))?;
            a.ret()
        });
        insta::assert_snapshot!(split(f), @"
        L0:
          lea esp,[esp-8]
          mov dword [esp+4],1020304h
          movzx eax,byte [esp+3]
          add eax,[esp+4]
          lea esp,[esp+8]
          ret
          exit
        ");
    }
}
