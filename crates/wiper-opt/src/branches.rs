//! Branches decided by the branch before them: a block entered only along
//! the edge of a branch on `r == 0` (or on `r != 0`) that tests `r` against
//! zero again, `r` unchanged, always goes the same way; so does one after a
//! branch on a byte or dword in memory being zero that loads it unchanged
//! into a register and tests that (`cmp BYTE PTR [ecx], 0; je ...` then
//! `movzx edx, BYTE PTR [ecx]; cmp dl, 0; jne ...`). Its conditional
//! branch becomes a jump. (Specialization makes these: an interpreter's
//! `if (c)` and its loop test `while (c)` on the same value end up next to
//! each other in the residual code.) And a branch around setting a
//! register to the value it was just found unequal to goes: the register
//! holds that value on both arms.

use std::collections::HashMap;

use iced_x86::{
    Code, ConditionCode, FlowControl, Instruction, InstructionInfoFactory, Mnemonic, OpAccess,
    OpKind, Register,
};
use wiper_residual::{Block, Item, Label, Residual, Terminator};

use crate::constants::{equal_when_zero, width};
use crate::effects::{memory_operand, reg_bit, zero_test, EffectsOf, Locs, ALL_FLAGS};
use crate::liveness::{block_index, liveness, successors};

/// For a block ending in `je`/`jne`: the register its flags come from, when
/// the last item that writes flags is a zero test of it and nothing after
/// the test writes the register; with the index of the test.
fn block_zero_test(
    items: &[Item],
    cc: ConditionCode,
    calc: &mut EffectsOf,
) -> Option<(Register, usize)> {
    if !matches!(cc, ConditionCode::e | ConditionCode::ne) {
        return None;
    }
    let mut written = 0;
    for (k, item) in items.iter().enumerate().rev() {
        let defs = calc.item(item, None).defs;
        if defs & ALL_FLAGS != 0 {
            let r = zero_test(item)?;
            return (written & reg_bit(r)? == 0).then_some((r, k));
        }
        written |= defs;
    }
    None
}

/// How many ways each block (by index) is entered: its predecessors'
/// edges, plus one for the entry block.
fn entry_counts(residual: &Residual, index: &HashMap<Label, usize>) -> Vec<usize> {
    let mut preds = vec![0usize; residual.blocks.len()];
    for b in &residual.blocks {
        for l in successors(&b.terminator) {
            if let Some(&i) = index.get(&l) {
                preds[i] += 1;
            }
        }
    }
    if let Some(i) = residual.entry.and_then(|l| index.get(&l)) {
        preds[*i] += 1;
    }
    preds
}

/// What a block's zero test tests.
#[derive(Clone, Copy)]
enum Tested {
    /// A register.
    Reg(Register),
    /// Memory (a byte or a dword).
    Mem(MemKey),
}

/// A memory operand, as compared: base, index, scale, displacement, size.
pub(crate) type MemKey = (Register, Register, u32, u32, usize);

/// The memory operand of `ins` when it has one in the default segment.
pub(crate) fn memory_key(ins: &Instruction) -> Option<MemKey> {
    (memory_operand(ins).is_some() && ins.segment_prefix() == Register::None).then(|| {
        (
            ins.memory_base(),
            ins.memory_index(),
            ins.memory_index_scale(),
            ins.memory_displacement32(),
            ins.memory_size().size(),
        )
    })
}

/// Whether `item` may write memory (or is not an instruction).
fn writes_memory(item: &Item, factory: &mut InstructionInfoFactory) -> bool {
    let Item::Instr(ins, _) = item else {
        return true;
    };
    if ins.flow_control() != FlowControl::Next {
        return true;
    }
    let info = factory.info(ins);
    info.used_memory().iter().any(|m| {
        !matches!(
            m.access(),
            OpAccess::Read | OpAccess::CondRead | OpAccess::NoMemAccess
        )
    })
}

/// Whether `defs` (location bits) write a register of the address of `m`.
fn writes_address_of(defs: Locs, m: &MemKey) -> bool {
    [m.0, m.1]
        .into_iter()
        .filter_map(reg_bit)
        .any(|bit| defs & bit != 0)
}

/// For a block ending in `je`/`jne`: the byte or dword in memory its flags
/// come from, when the last item that writes flags is `cmp BYTE PTR [m],
/// 0` or `cmp DWORD PTR [m], 0` and nothing after it writes memory or the
/// registers of the address.
fn block_memory_zero_test(
    items: &[Item],
    cc: ConditionCode,
    calc: &mut EffectsOf,
    factory: &mut InstructionInfoFactory,
) -> Option<MemKey> {
    if !matches!(cc, ConditionCode::e | ConditionCode::ne) {
        return None;
    }
    let k = items
        .iter()
        .rposition(|item| calc.item(item, None).defs & ALL_FLAGS != 0)?;
    let Item::Instr(ins, _) = &items[k] else {
        return None;
    };
    let compares_zero = matches!(
        ins.code(),
        Code::Cmp_rm8_imm8 | Code::Cmp_rm32_imm8 | Code::Cmp_rm32_imm32
    ) && ins.op0_kind() == OpKind::Memory
        && ins.immediate(1) == 0;
    let m = memory_key(ins).filter(|_| compares_zero)?;
    let untouched = items[k + 1..].iter().all(|item| {
        !writes_memory(item, factory) && !writes_address_of(calc.item(item, None).defs, &m)
    });
    untouched.then_some(m)
}

/// Whether, after `items[..k]` run, register `r` is zero exactly when the
/// memory at `m` was zero before them: an item loads `m` into the register
/// (`movzx r32, BYTE PTR [m]`, `mov r8, BYTE PTR [m]`, `mov r32, DWORD PTR
/// [m]`), nothing before it writes memory or the address's registers, and
/// nothing after it writes the register.
fn holds_copy_of(
    items: &[Item],
    r: Register,
    m: &MemKey,
    calc: &mut EffectsOf,
    factory: &mut InstructionInfoFactory,
) -> bool {
    let Some(full) = reg_bit(r.full_register32()) else {
        return false;
    };
    let mut copy = false;
    for item in items {
        let defs = calc.item(item, None).defs;
        if let Item::Instr(ins, _) = item {
            if memory_key(ins).as_ref() == Some(m) && ins.op0_kind() == OpKind::Register {
                let dst = ins.op0_register();
                let loads = match ins.code() {
                    Code::Movzx_r32_rm8 => m.4 == 1 && dst == r.full_register32(),
                    Code::Mov_r8_rm8 => m.4 == 1 && dst == r,
                    Code::Mov_r32_rm32 => m.4 == 4 && dst == r,
                    _ => false,
                };
                if loads {
                    copy = true;
                    continue;
                }
            }
        }
        if !copy && (writes_memory(item, factory) || writes_address_of(defs, m)) {
            return false; // the memory may differ from what was tested
        }
        if defs & full != 0 {
            copy = false;
        }
    }
    copy && (r == r.full_register32()) == (m.4 == 4)
}

/// The zero test a block ending in a `je`/`jne` branch makes: of a
/// register or of memory.
fn block_test(
    items: &[Item],
    cc: ConditionCode,
    calc: &mut EffectsOf,
    factory: &mut InstructionInfoFactory,
) -> Option<Tested> {
    match block_zero_test(items, cc, calc) {
        Some((r, _)) => Some(Tested::Reg(r)),
        None => block_memory_zero_test(items, cc, calc, factory).map(Tested::Mem),
    }
}

/// Where `next` (a block) goes when it is entered with what `tested` tests
/// being zero (`zero`) or not: its branch, when it zero-tests the same
/// register unchanged or a register it loads from the same memory.
fn decided_target(
    tested: &Tested,
    zero: bool,
    next: &Block,
    calc: &mut EffectsOf,
    factory: &mut InstructionInfoFactory,
) -> Option<Terminator> {
    let Terminator::Branch {
        cc,
        taken,
        not_taken,
        origin,
    } = next.terminator
    else {
        return None;
    };
    let (r2, k) = block_zero_test(&next.items, cc, calc)?;
    let same = match tested {
        Tested::Reg(r) => {
            *r == r2
                && next.items[..k]
                    .iter()
                    .all(|item| calc.item(item, None).defs & reg_bit(*r).unwrap_or(!0) == 0)
        }
        Tested::Mem(m) => holds_copy_of(&next.items[..k], r2, m, calc, factory),
    };
    let holds = (cc == ConditionCode::e) == zero;
    same.then_some(Terminator::Jump(
        if holds { taken } else { not_taken },
        origin,
    ))
}

/// The blocks that branches on a zero test enter, each with the test and
/// whether the tested value is zero along that edge (`je` taken, or `jne`
/// not taken), when the block is entered only there.
fn tested_edges(
    residual: &Residual,
    calc: &mut EffectsOf,
    factory: &mut InstructionInfoFactory,
) -> Vec<(usize, bool, Tested)> {
    let index = block_index(residual);
    let preds = entry_counts(residual, &index);
    let mut out = Vec::new();
    for (b, block) in residual.blocks.iter().enumerate() {
        let Terminator::Branch {
            cc,
            taken,
            not_taken,
            ..
        } = block.terminator
        else {
            continue;
        };
        if taken == not_taken {
            continue;
        }
        let Some(tested) = block_test(&block.items, cc, calc, factory) else {
            continue;
        };
        for (target, zero) in [
            (taken, cc == ConditionCode::e),
            (not_taken, cc != ConditionCode::e),
        ] {
            if let Some(&s) = index.get(&target) {
                if s != b && preds[s] == 1 {
                    out.push((s, zero, tested));
                }
            }
        }
    }
    out
}

/// Decides the branches that a single predecessor's branch on the same
/// zero test already decided; returns how many.
pub fn decide_repeated_tests(residual: &mut Residual, calc: &mut EffectsOf) -> usize {
    let mut factory = InstructionInfoFactory::new();
    let mut decided = Vec::new();
    for (s, zero, tested) in tested_edges(residual, calc, &mut factory) {
        let next = &residual.blocks[s];
        if let Some(t) = decided_target(&tested, zero, next, calc, &mut factory) {
            decided.push((s, t));
        }
    }
    let count = decided.len();
    for (s, t) in decided {
        residual.blocks[s].terminator = t;
    }
    count
}

/// Largest block whose repeated zero test [`thread_repeated_tests`] copies.
pub const MAX_THREADED_ITEMS: usize = 4;

/// Threads jumps through repeated zero tests: a block `p` entered only
/// along an edge of a branch on a zero test, that changes neither the
/// tested register (nor, for memory, any memory or the address's
/// registers) and jumps to a block `s` of at most [`MAX_THREADED_ITEMS`]
/// items that tests the same again (with other ways in, so that
/// [`decide_repeated_tests`] cannot decide it): `s`'s items are copied to
/// the end of `p`, which then jumps where `s` goes along that edge.
/// (Closing an interpreter's loops leaves `if (c) ... ; while (c)` joined
/// from both arms.) Returns how many.
pub fn thread_repeated_tests(residual: &mut Residual, calc: &mut EffectsOf) -> usize {
    let mut factory = InstructionInfoFactory::new();
    let index = block_index(residual);
    let mut threaded = Vec::new();
    for (p, zero, tested) in tested_edges(residual, calc, &mut factory) {
        let between = &residual.blocks[p];
        let Terminator::Jump(target, _) = between.terminator else {
            continue;
        };
        let Some(&s) = index.get(&target) else {
            continue;
        };
        let next = &residual.blocks[s];
        if s == p || next.items.len() > MAX_THREADED_ITEMS {
            continue;
        }
        if !keeps_tested(&between.items, &tested, calc, &mut factory) {
            continue;
        }
        if let Some(t) = decided_target(&tested, zero, next, calc, &mut factory) {
            threaded.push((p, next.items.clone(), t));
        }
    }
    let count = threaded.len();
    for (p, items, t) in threaded {
        residual.blocks[p].items.extend(items);
        residual.blocks[p].terminator = t;
    }
    count
}

/// Whether `items` leave what `tested` tests unchanged: no write of the
/// register; for memory, no write of memory or of the address's registers.
fn keeps_tested(
    items: &[Item],
    tested: &Tested,
    calc: &mut EffectsOf,
    factory: &mut InstructionInfoFactory,
) -> bool {
    items.iter().all(|item| {
        let defs = calc.item(item, None).defs;
        match tested {
            Tested::Reg(r) => defs & reg_bit(*r).unwrap_or(!0) == 0,
            Tested::Mem(m) => !writes_memory(item, factory) && !writes_address_of(defs, m),
        }
    })
}

/// The register and value a `cmp r,k` or `test r,r` (k = 0) compares,
/// `k` truncated to the register's width.
fn compared(ins: &Instruction) -> Option<(Register, u32)> {
    matches!(ins.mnemonic(), Mnemonic::Cmp | Mnemonic::Test)
        .then(|| equal_when_zero(ins))
        .flatten()
}

/// Whether `item` is `mov r,k` (an immediate, truncated to `r`'s width).
fn sets_to(item: &Item, r: Register, k: u32) -> bool {
    let Item::Instr(ins, _) = item else {
        return false;
    };
    ins.mnemonic() == Mnemonic::Mov
        && ins.op0_kind() == OpKind::Register
        && ins.op0_register() == r
        && !matches!(ins.op1_kind(), OpKind::Register | OpKind::Memory)
        && ins.immediate(1) as u32 & width(r) == k
}

/// `cmp r,k; jne B` (or `je` around B) where B, entered only there, is
/// just `mov r,k` and goes on where the other arm does: whichever way the
/// branch goes, `r` is `k` after it, so the compare and branch become the
/// move and a jump, when no flag is read at the join. (Closing `while (c)
/// c--` leaves this shape: an interpreter's `[-]`.) Returns how many.
pub fn set_known_values(residual: &mut Residual, calc: &mut EffectsOf) -> usize {
    let index = block_index(residual);
    let preds = entry_counts(residual, &index);
    let fx = calc.residual(residual);
    let live = liveness(residual, &fx);
    let mut rewrites = Vec::new();
    for (a, block) in residual.blocks.iter().enumerate() {
        let Terminator::Branch {
            cc,
            taken,
            not_taken,
            origin,
        } = block.terminator
        else {
            continue;
        };
        let (set, join) = match cc {
            ConditionCode::e => (not_taken, taken),
            ConditionCode::ne => (taken, not_taken),
            _ => continue,
        };
        let Some(Item::Instr(test, _)) = block.items.last() else {
            continue;
        };
        let (Some((r, k)), Some(&b), Some(&j)) =
            (compared(test), index.get(&set), index.get(&join))
        else {
            continue;
        };
        let arm = &residual.blocks[b];
        let joins = matches!(arm.terminator, Terminator::Jump(l, _) if l == join);
        if b != a
            && set != join
            && preds[b] == 1
            && joins
            && arm.items.len() == 1
            && sets_to(&arm.items[0], r, k)
            && live.live_in[j] & ALL_FLAGS == 0
        {
            rewrites.push((a, arm.items[0].clone(), Terminator::Jump(join, origin)));
        }
    }
    let count = rewrites.len();
    for (a, set, jump) in rewrites {
        let block = &mut residual.blocks[a];
        block.items.pop();
        block.items.push(set);
        block.terminator = jump;
    }
    count
}

#[cfg(test)]
mod tests {
    use iced_x86::code_asm::*;
    use iced_x86::ConditionCode as Cc;
    use wiper_residual::Terminator;

    use crate::testutil::{after, asm, block, branch, jump, residual};

    /// `test eax,eax; je L1` then L1 (entered only there) tests `eax`
    /// again after `second`: L0 -> L1 -> L2 or L3.
    fn repeated(second: Vec<iced_x86::Instruction>) -> wiper_residual::Residual {
        let ret = |l| block(l, asm(|a| a.ret()), Terminator::Exit);
        residual(vec![
            block(0, asm(|a| a.test(eax, eax)), branch(Cc::e, 1, 3)),
            block(1, second, branch(Cc::ne, 2, 3)),
            ret(2),
            ret(3),
        ])
    }

    /// Decided: `eax` is still zero in L1, so its `jne` never jumps.
    #[test]
    fn a_repeated_zero_test_is_decided() {
        let r = repeated(asm(|a| {
            a.mov(ebx, 1)?;
            a.cmp(eax, 0)
        }));
        insta::assert_snapshot!(after(r, super::decide_repeated_tests), @"
        L0:
          test eax,eax
          je L1 else L3
        L1:
          mov ebx,1
          cmp eax,0
          jmp L3
        L2:
          ret
          exit
        L3:
          ret
          exit
        ");
    }

    /// `cmp BYTE PTR [ecx],0; je L1 else L3`, then L1 runs `second` and
    /// branches on its flags: L0 -> L1 -> L2 or L3.
    fn repeated_byte(second: Vec<iced_x86::Instruction>) -> wiper_residual::Residual {
        let ret = |l| block(l, asm(|a| a.ret()), Terminator::Exit);
        residual(vec![
            block(0, asm(|a| a.cmp(byte_ptr(ecx), 0)), branch(Cc::ne, 1, 3)),
            block(1, second, branch(Cc::ne, 2, 3)),
            ret(2),
            ret(3),
        ])
    }

    /// Decided: L1 loads the byte L0 found not zero and tests it again
    /// (bf_nested's `[` after `,`), so its `jne` always jumps.
    #[test]
    fn a_byte_tested_again_through_a_register_is_decided() {
        let r = repeated_byte(asm(|a| {
            a.movzx(edx, byte_ptr(ecx))?;
            a.mov(eax, 1)?;
            a.cmp(dl, 0)
        }));
        insta::assert_snapshot!(after(r, super::decide_repeated_tests), @"
        L0:
          cmp byte [ecx],0
          jne L1 else L3
        L1:
          movzx edx,byte [ecx]
          mov eax,1
          cmp dl,0
          jmp L2
        L2:
          ret
          exit
        L3:
          ret
          exit
        ");
    }

    /// Near misses: a store before the load (it may change the byte), the
    /// address register changed before the load, the loaded register
    /// changed after it, another address, and a byte load tested as a
    /// dword (the upper bits are not the byte's).
    #[test]
    fn a_byte_that_may_have_changed_is_tested_again() {
        let cases = [
            asm(|a| {
                a.mov(byte_ptr(ebx), 0)?;
                a.movzx(edx, byte_ptr(ecx))?;
                a.test(dl, dl)
            }),
            asm(|a| {
                a.inc(ecx)?;
                a.movzx(edx, byte_ptr(ecx))?;
                a.test(dl, dl)
            }),
            asm(|a| {
                a.movzx(edx, byte_ptr(ecx))?;
                a.dec(dl)?;
                a.test(dl, dl)
            }),
            asm(|a| {
                a.movzx(edx, byte_ptr(ecx + 1))?;
                a.test(dl, dl)
            }),
            asm(|a| {
                a.mov(dl, byte_ptr(ecx))?;
                a.test(edx, edx)
            }),
        ];
        for second in cases {
            let before = repeated_byte(second.clone());
            let r = repeated_byte(second);
            let listing = after(r, super::decide_repeated_tests);
            assert!(
                listing.contains("jne L2 else L3"),
                "{listing}\n(from {before:?})"
            );
        }
    }

    /// L0 runs `first` and branches to L1 on `cc`; L1 runs `second` and
    /// branches on its flags: L0 -> L1 -> L2 or L3.
    fn tested_in(
        first: Vec<iced_x86::Instruction>,
        cc: Cc,
        second: Vec<iced_x86::Instruction>,
    ) -> String {
        let ret = |l| block(l, asm(|a| a.ret()), Terminator::Exit);
        let r = residual(vec![
            block(0, first, branch(cc, 1, 3)),
            block(1, second, branch(Cc::ne, 2, 3)),
            ret(2),
            ret(3),
        ]);
        after(r, super::decide_repeated_tests)
    }

    /// Decided: writes of registers that are not the address's, after the
    /// compare and before the load, leave the byte as it was tested; a
    /// dword loaded into the register tested is the dword tested.
    #[test]
    fn unrelated_writes_and_dword_copies_keep_the_test_decided() {
        let byte = tested_in(
            asm(|a| {
                a.cmp(byte_ptr(ecx), 0)?;
                a.mov(eax, 2)
            }),
            Cc::ne,
            asm(|a| {
                a.mov(ebx, 1)?;
                a.movzx(edx, byte_ptr(ecx))?;
                a.test(dl, dl)
            }),
        );
        assert!(byte.contains("test dl,dl\n  jmp L2"), "{byte}");
        let dword = tested_in(
            asm(|a| a.cmp(dword_ptr(ecx), 0)),
            Cc::e,
            asm(|a| {
                a.mov(edx, dword_ptr(ecx))?;
                a.test(edx, edx)
            }),
        );
        assert!(dword.contains("test edx,edx\n  jmp L3"), "{dword}");
    }

    /// Near misses: a dword loaded into another register than the one
    /// tested, and flags that do not say whether the memory is zero
    /// (`test [m],0` always sets ZF; `adc [m],0` adds the carry), though
    /// their operands look like a compare with zero.
    #[test]
    fn other_registers_and_other_zero_immediates_stay() {
        let cases = [
            (
                asm(|a| a.cmp(dword_ptr(ecx), 0)),
                asm(|a| {
                    a.mov(eax, dword_ptr(ecx))?;
                    a.test(edx, edx)
                }),
            ),
            (
                asm(|a| a.test(byte_ptr(ecx), 0)),
                asm(|a| {
                    a.movzx(edx, byte_ptr(ecx))?;
                    a.test(dl, dl)
                }),
            ),
            (
                asm(|a| a.adc(byte_ptr(ecx), 0)),
                asm(|a| a.cmp(byte_ptr(ecx), 0)),
            ),
        ];
        for (first, second) in cases {
            let listing = tested_in(first, Cc::e, second);
            assert!(listing.contains("jne L2 else L3"), "{listing}");
        }
    }

    /// Near miss: `mov ah,1` changes `eax` between the tests.
    #[test]
    fn a_zero_test_of_a_changed_register_stays() {
        let r = repeated(asm(|a| {
            a.mov(ah, 1)?;
            a.test(eax, eax)
        }));
        insta::assert_snapshot!(after(r, super::decide_repeated_tests), @"
        L0:
          test eax,eax
          je L1 else L3
        L1:
          mov ah,1
          test eax,eax
          jne L2 else L3
        L2:
          ret
          exit
        L3:
          ret
          exit
        ");
    }

    /// Near miss: `al` is not `eax` (`eax` zero says `al` is, not the
    /// reverse, and the pass compares the same register only).
    #[test]
    fn a_zero_test_of_another_width_stays() {
        let r = repeated(asm(|a| a.test(al, al)));
        insta::assert_snapshot!(after(r, super::decide_repeated_tests), @"
        L0:
          test eax,eax
          je L1 else L3
        L1:
          test al,al
          jne L2 else L3
        L2:
          ret
          exit
        L3:
          ret
          exit
        ");
    }

    /// Near miss: L1 is also entered by a jump from L4, where `eax` is
    /// not known to be zero.
    /// The two arms of a test of `eax` set `ebx` and join at a block that
    /// tests `eax` again: each arm gets the test and jumps where it goes.
    #[test]
    fn a_jump_into_a_repeated_test_is_threaded() {
        let mut r = repeated(asm(|a| a.test(eax, eax)));
        r.blocks[0].terminator = branch(Cc::e, 4, 5);
        r.blocks.push(block(4, asm(|a| a.mov(ebx, 1)), jump(1)));
        r.blocks.push(block(5, asm(|a| a.mov(ebx, 2)), jump(1)));
        insta::assert_snapshot!(after(r, super::thread_repeated_tests), @"
        L0:
          test eax,eax
          je L4 else L5
        L1:
          test eax,eax
          jne L2 else L3
        L2:
          ret
          exit
        L3:
          ret
          exit
        L4:
          mov ebx,1
          test eax,eax
          jmp L3
        L5:
          mov ebx,2
          test eax,eax
          jmp L2
        ");
    }

    /// Near misses: an arm that changes `eax` keeps its jump, and so does
    /// one joining a block too long to copy.
    #[test]
    fn a_jump_into_a_test_of_a_changed_or_long_block_stays() {
        let mut r = repeated(asm(|a| a.test(eax, eax)));
        r.blocks[0].terminator = branch(Cc::e, 4, 5);
        r.blocks.push(block(4, asm(|a| a.mov(eax, 1)), jump(1)));
        r.blocks.push(block(5, asm(|a| a.mov(ebx, 2)), jump(6)));
        let long = asm(|a| {
            for k in 0..4 {
                a.mov(ecx, k)?;
            }
            a.test(eax, eax)
        });
        r.blocks.push(block(6, long, branch(Cc::ne, 2, 3)));
        insta::assert_snapshot!(after(r, super::thread_repeated_tests), @"
        L0:
          test eax,eax
          je L4 else L5
        L1:
          test eax,eax
          jne L2 else L3
        L2:
          ret
          exit
        L3:
          ret
          exit
        L4:
          mov eax,1
          jmp L1
        L5:
          mov ebx,2
          jmp L6
        L6:
          mov ecx,0
          mov ecx,1
          mov ecx,2
          mov ecx,3
          test eax,eax
          jne L2 else L3
        ");
    }

    #[test]
    fn a_block_with_two_ways_in_stays() {
        let mut r = repeated(asm(|a| a.test(eax, eax)));
        r.blocks[0].terminator = branch(Cc::e, 1, 4);
        r.blocks.push(block(4, asm(|a| a.mov(eax, 5)), jump(1)));
        insta::assert_snapshot!(after(r, super::decide_repeated_tests), @"
        L0:
          test eax,eax
          je L1 else L4
        L1:
          test eax,eax
          jne L2 else L3
        L2:
          ret
          exit
        L3:
          ret
          exit
        L4:
          mov eax,5
          jmp L1
        ");
    }

    /// Along the taken edge of `jne`, `eax` is not zero: L1's `je` never
    /// jumps.
    #[test]
    fn a_repeated_test_along_the_not_zero_edge_is_decided() {
        let ret = |l| block(l, asm(|a| a.ret()), Terminator::Exit);
        let r = residual(vec![
            block(0, asm(|a| a.test(eax, eax)), branch(Cc::ne, 1, 3)),
            block(
                1,
                asm(|a| {
                    a.mov(ebx, 1)?;
                    a.test(eax, eax)
                }),
                branch(Cc::e, 2, 3),
            ),
            ret(2),
            ret(3),
        ]);
        insta::assert_snapshot!(after(r, super::decide_repeated_tests), @"
        L0:
          test eax,eax
          jne L1 else L3
        L1:
          mov ebx,1
          test eax,eax
          jmp L3
        L2:
          ret
          exit
        L3:
          ret
          exit
        ");
    }

    /// Decided: L0's zero test need not be its last item, when what
    /// follows writes neither the flags nor `eax`.
    #[test]
    fn a_zero_test_followed_by_a_move_decides_the_next_one() {
        let listing = tested_in(
            asm(|a| {
                a.test(eax, eax)?;
                a.mov(ebx, 1)
            }),
            Cc::e,
            asm(|a| a.test(eax, eax)),
        );
        assert!(listing.contains("test eax,eax\n  jmp L3"), "{listing}");
    }

    /// Decided: a byte loaded with `mov r8` (not `movzx`) and tested as
    /// that byte is the byte L0 tested.
    #[test]
    fn a_byte_loaded_into_a_byte_register_is_tested_again() {
        let listing = tested_in(
            asm(|a| a.cmp(byte_ptr(ecx), 0)),
            Cc::e,
            asm(|a| {
                a.mov(dl, byte_ptr(ecx))?;
                a.test(dl, dl)
            }),
        );
        assert!(listing.contains("test dl,dl\n  jmp L3"), "{listing}");
    }

    /// Near miss: the byte is zero-extended into `eax`, but `dl` is
    /// tested.
    #[test]
    fn a_byte_loaded_into_another_register_than_the_tested_one_stays() {
        let listing = tested_in(
            asm(|a| a.cmp(byte_ptr(ecx), 0)),
            Cc::e,
            asm(|a| {
                a.movzx(eax, byte_ptr(ecx))?;
                a.test(dl, dl)
            }),
        );
        assert!(listing.contains("jne L2 else L3"), "{listing}");
    }

    /// Near misses: after L0's compare, and before its branch, a store
    /// (it may be to the byte compared) or a move of the address register
    /// (without writing flags), so L1's load may see another byte.
    #[test]
    fn a_byte_stored_to_or_moved_after_its_compare_is_tested_again() {
        for after_compare in [
            asm(|a| a.mov(byte_ptr(ebx), 1)),
            asm(|a| a.lea(ecx, ptr(ecx + 1))),
        ] {
            let mut first = asm(|a| a.cmp(byte_ptr(ecx), 0));
            first.extend(after_compare);
            let listing = tested_in(
                first,
                Cc::e,
                asm(|a| {
                    a.movzx(edx, byte_ptr(ecx))?;
                    a.test(dl, dl)
                }),
            );
            assert!(listing.contains("jne L2 else L3"), "{listing}");
        }
    }

    /// L0 tests the byte at `[ecx]` and goes to L4 when it is zero, else
    /// to L5; L4 runs `between` and joins L5 at L1, which loads the byte,
    /// tests it again and branches to L2 or L3.
    fn memory_test_joined(between: Vec<iced_x86::Instruction>) -> String {
        let ret = |l| block(l, asm(|a| a.ret()), Terminator::Exit);
        let r = residual(vec![
            block(0, asm(|a| a.cmp(byte_ptr(ecx), 0)), branch(Cc::e, 4, 5)),
            block(
                1,
                asm(|a| {
                    a.movzx(edx, byte_ptr(ecx))?;
                    a.test(dl, dl)
                }),
                branch(Cc::ne, 2, 3),
            ),
            ret(2),
            ret(3),
            block(4, between, jump(1)),
            block(5, asm(|a| a.mov(ebx, 2)), jump(1)),
        ]);
        after(r, super::thread_repeated_tests)
    }

    /// Threaded: an arm that writes neither memory nor `ecx` gets the
    /// test; near misses: an arm that stores a byte (it may be the one
    /// tested), and one that moves the address register, keep their jump.
    #[test]
    fn a_memory_test_is_threaded_only_through_arms_that_keep_the_byte() {
        let kept = memory_test_joined(asm(|a| a.mov(ebx, 1)));
        assert!(kept.contains("mov ebx,1\n  movzx"), "{kept}");
        assert_eq!(kept.matches("jmp L1").count(), 0, "{kept}");
        for between in [asm(|a| a.mov(byte_ptr(ebx), 1)), asm(|a| a.inc(ecx))] {
            let listing = memory_test_joined(between);
            assert_eq!(listing.matches("jmp L1").count(), 1, "{listing}");
        }
    }

    /// L0 compares `bl` with `k` and skips L1 (`set`) when equal; both
    /// join at L2, which runs `join` and returns.
    fn guarded(
        k: u32,
        set: Vec<iced_x86::Instruction>,
        join: Vec<iced_x86::Instruction>,
    ) -> wiper_residual::Residual {
        residual(vec![
            block(0, asm(|a| a.cmp(bl, k)), branch(Cc::e, 2, 1)),
            block(1, set, jump(2)),
            block(2, join, Terminator::Exit),
        ])
    }

    /// `if (bl != 7) bl = 7` is `bl = 7`.
    #[test]
    fn a_register_set_to_the_value_it_was_compared_with_is_set_always() {
        let r = guarded(7, asm(|a| a.mov(bl, 7)), asm(|a| a.ret()));
        insta::assert_snapshot!(after(r, super::set_known_values), @"
        L0:
          mov bl,7
          jmp L2
        L1:
          mov bl,7
          jmp L2
        L2:
          ret
          exit
        ");
    }

    /// Near misses: another value, another register, a second item in
    /// the arm, and the flags of the compare read after the join (`setb`).
    #[test]
    fn a_guard_that_changes_something_stays() {
        let cases = [
            guarded(7, asm(|a| a.mov(bl, 8)), asm(|a| a.ret())),
            guarded(7, asm(|a| a.mov(cl, 7)), asm(|a| a.ret())),
            guarded(
                7,
                asm(|a| {
                    a.mov(bl, 7)?;
                    a.inc(eax)
                }),
                asm(|a| a.ret()),
            ),
            guarded(
                7,
                asm(|a| a.mov(bl, 7)),
                asm(|a| {
                    a.setb(al)?;
                    a.ret()
                }),
            ),
        ];
        for r in cases {
            let before = crate::testutil::listing(&r);
            assert_eq!(after(r, super::set_known_values), before);
        }
    }

    /// Near miss: `esp` is compared with 100h and the arm sets it to 200h,
    /// another value (the width of `esp`, which has no place among the
    /// known values, is still all 32 bits, not none).
    #[test]
    fn a_stack_pointer_set_to_another_value_stays() {
        let r = residual(vec![
            block(0, asm(|a| a.cmp(esp, 0x100)), branch(Cc::ne, 1, 2)),
            block(1, asm(|a| a.mov(esp, 0x200)), jump(2)),
            block(2, asm(|a| a.ret()), Terminator::Exit),
        ]);
        let before = crate::testutil::listing(&r);
        assert_eq!(after(r, super::set_known_values), before);
    }

    /// Near miss: the arm is also entered from elsewhere (here it is the
    /// entry too), where `bl` may be anything.
    #[test]
    fn a_guarded_set_entered_elsewhere_stays() {
        let mut r = guarded(0, asm(|a| a.mov(bl, 0)), asm(|a| a.ret()));
        r.entry = Some(wiper_residual::Label(1));
        let before = crate::testutil::listing(&r);
        assert_eq!(after(r, super::set_known_values), before);
    }

    /// Near misses: a byte compared in another segment (`fs:`) than the one
    /// loaded, either way round, may differ from it: the test stays. (In
    /// the default segment both ways, it is decided.)
    #[test]
    fn a_byte_in_another_segment_is_tested_again() {
        let cases = [
            (byte_ptr(ecx).fs(), byte_ptr(ecx)),
            (byte_ptr(ecx), byte_ptr(ecx).fs()),
        ];
        for (tested, loaded) in cases {
            let listing = tested_in(
                asm(|a| a.cmp(tested, 0)),
                Cc::ne,
                asm(|a| {
                    a.movzx(edx, loaded)?;
                    a.test(dl, dl)
                }),
            );
            assert!(listing.contains("jne L2 else L3"), "{listing}");
        }
        let decided = tested_in(
            asm(|a| a.cmp(byte_ptr(ecx), 0)),
            Cc::ne,
            asm(|a| {
                a.movzx(edx, byte_ptr(ecx))?;
                a.test(dl, dl)
            }),
        );
        assert!(decided.contains("jmp L2"), "{decided}");
    }

    /// The join reached by the not-zero arm has [`super::MAX_THREADED_ITEMS`]
    /// items (three moves and the test): it is short enough to copy.
    #[test]
    fn a_jump_into_a_test_of_a_block_of_the_largest_size_is_threaded() {
        let mut r = repeated(asm(|a| a.test(eax, eax)));
        r.blocks[0].terminator = branch(Cc::e, 4, 5);
        r.blocks.push(block(4, asm(|a| a.mov(eax, 1)), jump(1)));
        r.blocks.push(block(5, asm(|a| a.mov(ebx, 2)), jump(6)));
        let largest = asm(|a| {
            for k in 0..super::MAX_THREADED_ITEMS as u32 - 1 {
                a.mov(ecx, k)?;
            }
            a.test(eax, eax)
        });
        r.blocks.push(block(6, largest, branch(Cc::ne, 2, 3)));
        let listing = after(r, super::thread_repeated_tests);
        assert!(
            listing.contains("L5:\n  mov ebx,2\n  mov ecx,0\n  mov ecx,1\n  mov ecx,2\n  test eax,eax\n  jmp L2\n"),
            "{listing}"
        );
    }
}
