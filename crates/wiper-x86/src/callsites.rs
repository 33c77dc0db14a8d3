//! The direct call sites of a function in a binary, and the constant stack
//! arguments each one passes: what `wiper`'s warnings compare with the
//! static inputs of a spec (a function nothing calls, call sites that pass
//! other constants).
//!
//! Call sites are found like [`crate::callers`] finds them: every relative
//! branch encoding that targets the entry ([`branch_references`]), kept when
//! the decoded code of the function symbol holding it has a `call`
//! instruction there. The arguments are found by a simple backward scan of
//! the call's basic block: from the `call` back to the block's start,
//! following the stack pointer through `push`, `pop`, `sub`/`add esp, imm`
//! and `lea esp,[esp+d]`, the nearest store to each argument slot
//! (`push imm`, `mov DWORD PTR [esp+4k], imm`) is the value the call
//! passes. A store of anything but an immediate makes the slot unknown; an
//! argument stored in an earlier block, or a constant that reaches the slot
//! through a register, is not seen; the scan stops at any other write of
//! `esp`.

use std::collections::BTreeMap;

use iced_x86::{Code, FlowControl, Instruction, Mnemonic, OpKind, Register};
use wiper_elf::Binary;

use crate::callers::{absolute_references, branch_references, in_padding, instruction_covering};
use crate::Disassembler;

/// A direct `call` of a function, with the constants it passes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectCall {
    /// The address of the `call` instruction.
    pub site: u32,
    /// The entry of the function symbol that holds it.
    pub caller: u32,
    /// Stack arguments the call's block sets to a constant: (argument
    /// number, value, address of the instruction that stores it), by
    /// argument number.
    pub constants: Vec<(u32, u32, u32)>,
}

/// Whether anything in `binary` may refer to the function at `entry`: a
/// 4-byte copy of its address anywhere in the loaded image (a function
/// pointer), or a relative branch encoding targeting it that is not
/// explained as bytes inside another decoded instruction or alignment
/// padding. A position-independent binary takes addresses PC-relative,
/// which no scan finds: there the answer is always yes.
pub fn is_referenced(dis: &mut Disassembler<'_>, entry: u32) -> bool {
    let binary = dis.binary();
    if binary.file_type == wiper_elf::FileType::PositionIndependent
        || !absolute_references(binary, entry).is_empty()
    {
        return true;
    }
    branch_references(binary, entry)
        .into_iter()
        .any(|site| !inside_other_instruction(dis, site))
}

/// Whether the branch encoding at `site` lies inside a decoded instruction
/// that starts elsewhere, or in padding between functions.
fn inside_other_instruction(dis: &mut Disassembler<'_>, site: u32) -> bool {
    let binary = dis.binary();
    let Some(sym) = binary.function_containing(site) else {
        return in_padding(binary, site);
    };
    let owner = sym.addr;
    let Ok(func) = dis.function(owner) else {
        return false;
    };
    instruction_covering(&func, site).is_some_and(|(_, ins)| ins.ip32() != site)
}

/// Every direct `call` of the function at `entry` that the decoded code of
/// the binary's function symbols holds, with the constant arguments its
/// block stores (see the module documentation for the scan).
pub fn direct_calls(dis: &mut Disassembler<'_>, entry: u32) -> Vec<DirectCall> {
    let binary: &Binary = dis.binary();
    let mut calls = Vec::new();
    for site in branch_references(binary, entry) {
        let Some(owner) = binary.function_containing(site).map(|s| s.addr) else {
            continue;
        };
        let Ok(func) = dis.function(owner) else {
            continue;
        };
        let Some((block, ins)) = instruction_covering(&func, site) else {
            continue;
        };
        if ins.ip32() != site
            || ins.flow_control() != FlowControl::Call
            || ins.near_branch_target() != u64::from(entry)
        {
            continue;
        }
        let before: Vec<&Instruction> = block
            .instructions
            .iter()
            .take_while(|i| i.ip32() < site)
            .collect();
        calls.push(DirectCall {
            site,
            caller: owner,
            constants: constant_arguments(&before),
        });
    }
    calls
}

/// The constants the instructions `before` a call (in address order, the
/// call's block up to it) store into its stack argument slots.
pub fn constant_arguments(before: &[&Instruction]) -> Vec<(u32, u32, u32)> {
    // Argument slot -> Some((value, address)) for a constant, None for
    // anything else; the nearest store to the call wins.
    let mut slots: BTreeMap<u32, Option<(u32, u32)>> = BTreeMap::new();
    // The stack pointer after the instruction, relative to the call's.
    let mut delta: i64 = 0;
    for ins in before.iter().rev() {
        let mut note = |off: i64, value: Option<u32>| {
            if off >= 0 && off % 4 == 0 {
                slots
                    .entry((off / 4) as u32)
                    .or_insert(value.map(|v| (v, ins.ip32())));
            }
        };
        match ins.mnemonic() {
            Mnemonic::Push if ins.op0_kind() == OpKind::Register => {
                note(delta, None);
                delta += 4;
            }
            Mnemonic::Push => {
                note(delta, immediate(ins));
                delta += 4;
            }
            Mnemonic::Pop if ins.op0_register() != Register::ESP => delta -= 4,
            Mnemonic::Sub | Mnemonic::Add if writes_esp_by_immediate(ins) => {
                let imm = i64::from(ins.immediate(1) as u32 as i32);
                delta += if ins.mnemonic() == Mnemonic::Sub {
                    imm
                } else {
                    -imm
                };
            }
            Mnemonic::Lea
                if ins.op0_register() == Register::ESP
                    && ins.memory_base() == Register::ESP
                    && ins.memory_index() == Register::None =>
            {
                delta -= i64::from(ins.memory_displacement32() as i32);
            }
            _ if writes_esp(ins) => break,
            Mnemonic::Cmp | Mnemonic::Test => {}
            _ => {
                if let Some(off) = esp_store(ins) {
                    let value = (ins.mnemonic() == Mnemonic::Mov && ins.memory_size().size() == 4)
                        .then(|| immediate(ins))
                        .flatten();
                    note(delta + off, value);
                }
            }
        }
    }
    slots
        .into_iter()
        .filter_map(|(k, v)| v.map(|(value, at)| (k, value, at)))
        .collect()
}

/// The immediate operand of `push imm` or `mov [m], imm`, as 32 bits.
fn immediate(ins: &Instruction) -> Option<u32> {
    let last = ins.op_count().checked_sub(1)?;
    match ins.op_kind(last) {
        OpKind::Immediate8
        | OpKind::Immediate16
        | OpKind::Immediate32
        | OpKind::Immediate8to16
        | OpKind::Immediate8to32 => Some(ins.immediate(last) as u32),
        _ => None,
    }
}

/// `sub esp, imm` or `add esp, imm`.
fn writes_esp_by_immediate(ins: &Instruction) -> bool {
    ins.op0_kind() == OpKind::Register
        && ins.op0_register() == Register::ESP
        && immediate(ins).is_some()
}

/// Whether the instruction writes `esp` (other than the forms the scan
/// follows).
fn writes_esp(ins: &Instruction) -> bool {
    (ins.op_count() > 0
        && ins.op0_kind() == OpKind::Register
        && ins.op0_register() == Register::ESP)
        || matches!(
            ins.code(),
            Code::Pushad | Code::Popad | Code::Enterd_imm16_imm8 | Code::Leaved
        )
}

/// The offset from `esp` of a memory destination `[esp+d]`, if the
/// instruction's first operand is one.
fn esp_store(ins: &Instruction) -> Option<i64> {
    (ins.op_count() > 0
        && ins.op0_kind() == OpKind::Memory
        && ins.memory_base() == Register::ESP
        && ins.memory_index() == Register::None)
        .then(|| i64::from(ins.memory_displacement32() as i32))
}

#[cfg(test)]
mod tests {
    use iced_x86::{Decoder, DecoderOptions};

    use super::*;

    /// The constants a call after the instructions `code` passes:
    /// (argument, value) pairs.
    fn constants(code: &[u8]) -> Vec<(u32, u32)> {
        let instructions: Vec<Instruction> =
            Decoder::with_ip(32, code, 0x1000, DecoderOptions::NONE)
                .into_iter()
                .collect();
        let before: Vec<&Instruction> = instructions.iter().collect();
        constant_arguments(&before)
            .into_iter()
            .map(|(k, v, _)| (k, v))
            .collect()
    }

    #[test]
    fn pushed_constants_are_found_by_slot() {
        // push 7; push eax; push 5
        assert_eq!(constants(&[0x6a, 7, 0x50, 0x6a, 5]), [(0, 5), (2, 7)]);
        // push 0x12345678; push -1 (imm8, sign-extended)
        assert_eq!(
            constants(&[0x68, 0x78, 0x56, 0x34, 0x12, 0x6a, 0xff]),
            [(0, 0xffff_ffff), (1, 0x1234_5678)]
        );
    }

    #[test]
    fn stores_relative_to_esp_follow_its_moves() {
        // sub esp, 8; mov DWORD PTR [esp+4], 3; mov DWORD PTR [esp], eax
        let o0 = [
            0x83, 0xec, 0x08, 0xc7, 0x44, 0x24, 0x04, 3, 0, 0, 0, 0x89, 0x04, 0x24,
        ];
        assert_eq!(constants(&o0), [(1, 3)]);
        // mov DWORD PTR [esp+4], 3; sub esp, 4; push 1: the store is now
        // 12 bytes above the call's esp.
        let moved = [
            0xc7, 0x44, 0x24, 0x04, 3, 0, 0, 0, 0x83, 0xec, 0x04, 0x6a, 1,
        ];
        assert_eq!(constants(&moved), [(0, 1), (3, 3)]);
    }

    #[test]
    fn the_store_nearest_the_call_wins() {
        // mov DWORD PTR [esp], 9; mov DWORD PTR [esp], eax: not a constant.
        let code = [0xc7, 0x04, 0x24, 9, 0, 0, 0, 0x89, 0x04, 0x24];
        assert_eq!(constants(&code), []);
        // cmp DWORD PTR [esp], 4 writes nothing: the 9 stays.
        let cmp = [0xc7, 0x04, 0x24, 9, 0, 0, 0, 0x83, 0x3c, 0x24, 4];
        assert_eq!(constants(&cmp), [(0, 9)]);
        // An unknown write of esp stops the scan: mov esp, ebp.
        let stop = [0x6a, 2, 0x89, 0xec, 0x6a, 1];
        assert_eq!(constants(&stop), [(0, 1)]);
    }
}
