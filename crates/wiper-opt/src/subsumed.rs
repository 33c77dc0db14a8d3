//! Zero tests that the compare after them makes redundant: `if (*p == 0)
//! goto out; if (*p != 'z') goto out;` needs only the second test, since
//! a zero byte is not `'z'` either.
//!
//! A block `A` that ends in a zero test (`test r, r`, `cmp r, 0`, `cmp
//! BYTE PTR [m], 0`) and `je`/`jne`, whose nonzero edge leads to a block
//! `B` entered from `A` alone, loses its test and its branch when `B`,
//! run with the tested value zero, branches to where `A`'s zero edge goes:
//! - `B`'s items are register moves and arithmetic the evaluation of
//!   [`crate::constants`] can follow, and loads of the tested memory
//!   (`movzx r, BYTE PTR [m]`, which then give 0), then the compare that
//!   sets its branch's flags; none reads the flags or has another side
//!   effect;
//! - with the tested register (or the loaded copies of the memory) zero,
//!   `B`'s branch condition is decided, and it goes to `A`'s zero target;
//! - nothing `B` writes (registers, flags) is live where that target
//!   starts, so running `B` on the way there changes nothing it reads.
//!
//! A memory test goes only when `B` loads the same memory, which then
//! faults where the test would have. Each path runs fewer instructions:
//! the zero path runs `B`'s instead of the test and the branch (at most as
//! many, the test having been one of them), the other path two fewer.

use iced_x86::{Code, ConditionCode, Instruction, OpKind, Register};
use wiper_residual::{Item, Residual, Terminator};

use crate::branches::{memory_key, MemKey};
use crate::constants::holds_after;
use crate::effects::{low_byte, zero_test, EffectsOf, ALL_FLAGS};
use crate::liveness::{block_index, liveness};
use crate::sink::predecessor_counts;

/// What a block's last item tests against zero.
enum ZeroTested {
    /// A register.
    Reg(Register),
    /// A byte or dword in memory.
    Mem(MemKey),
}

/// The zero test that is `item`, if it is one.
fn zero_tested(item: &Item) -> Option<ZeroTested> {
    if let Some(r) = zero_test(item) {
        return Some(ZeroTested::Reg(r));
    }
    let Item::Instr(ins, _) = item else {
        return None;
    };
    let compares_zero = matches!(
        ins.code(),
        Code::Cmp_rm8_imm8 | Code::Cmp_rm32_imm8 | Code::Cmp_rm32_imm32
    ) && ins.op0_kind() == OpKind::Memory
        && ins.immediate(1) == 0;
    memory_key(ins)
        .filter(|_| compares_zero)
        .map(ZeroTested::Mem)
}

/// For a load of the tested memory `m` into a register (`movzx r32`,
/// `movsx r32`, `mov r8` of a byte, `mov r32` of a dword): that register
/// set to 0, as the evaluation sees it.
fn zero_load(ins: &Instruction, m: &MemKey) -> Option<Instruction> {
    if memory_key(ins).as_ref() != Some(m) || ins.op0_kind() != OpKind::Register {
        return None;
    }
    let r = ins.op0_register();
    let loads = match ins.code() {
        Code::Movzx_r32_rm8 | Code::Movsx_r32_rm8 | Code::Mov_r8_rm8 => m.4 == 1,
        Code::Mov_r32_rm32 => m.4 == 4,
        _ => false,
    };
    if !loads {
        return None;
    }
    let code = if r.size() == 1 {
        Code::Mov_r8_imm8
    } else {
        Code::Mov_r32_imm32
    };
    Instruction::with2(code, r, 0u32).ok()
}

/// Registers known at a block's start, with their values.
type Known = Vec<(Register, u32)>;

/// `B`'s items as the evaluation runs them with the tested value zero
/// (loads of the tested memory replaced by zeros), with the registers
/// known at its start; `None` when an item has a side effect other than
/// such a load, reads the flags, or the memory is never loaded.
fn items_when_zero(
    items: &[Item],
    tested: &ZeroTested,
    calc: &mut EffectsOf,
) -> Option<(Vec<Item>, Known)> {
    let mut out = Vec::with_capacity(items.len());
    let mut loaded = false;
    for item in items {
        let fx = calc.item(item, None);
        if fx.uses & ALL_FLAGS != 0 || fx.leaves {
            return None;
        }
        if let (ZeroTested::Mem(m), Item::Instr(ins, origin)) = (tested, item) {
            if let Some(zero) = zero_load(ins, m) {
                out.push(Item::Instr(zero, *origin));
                loaded = true;
                continue;
            }
        }
        if fx.side_effect {
            return None;
        }
        out.push(item.clone());
    }
    match tested {
        ZeroTested::Reg(r) => Some((out, vec![(*r, 0)])),
        ZeroTested::Mem(_) => loaded.then_some((out, Vec::new())),
    }
}

/// The tested value's zero as the evaluation starts from it: the tested
/// register, and when it is a low byte that the item before the test
/// extended into its whole register (`movsx edx, BYTE PTR [ebx]; test dl,
/// dl`), the whole register too.
fn zero_start(test_block: &[Item], tested: &ZeroTested, start: &mut Known) {
    let ZeroTested::Reg(r) = tested else {
        return;
    };
    let [.., Item::Instr(before, _), _] = test_block else {
        return;
    };
    let full = r.full_register32();
    let extends = matches!(before.code(), Code::Movzx_r32_rm8 | Code::Movsx_r32_rm8)
        && before.op0_register() == full;
    if r.size() == 1 && *r != full && extends && low_byte(full) == Some(*r) {
        start.push((full, 0));
    }
}

/// Drops every zero test that the compare after it makes redundant (see
/// the module documentation); returns how many.
pub fn drop_subsumed_zero_tests(residual: &mut Residual, calc: &mut EffectsOf) -> usize {
    let live = liveness(residual, &calc.residual(residual));
    let index = block_index(residual);
    let preds = predecessor_counts(residual);
    let mut dropped: Vec<(usize, usize)> = Vec::new();
    for (a, block) in residual.blocks.iter().enumerate() {
        let Terminator::Branch {
            cc,
            taken,
            not_taken,
            ..
        } = block.terminator
        else {
            continue;
        };
        let (zero, nonzero) = match cc {
            ConditionCode::e => (taken, not_taken),
            ConditionCode::ne => (not_taken, taken),
            _ => continue,
        };
        let Some(tested) = block.items.last().and_then(zero_tested) else {
            continue;
        };
        let (Some(&b), Some(&z)) = (index.get(&nonzero), index.get(&zero)) else {
            continue;
        };
        if b == a || z == b || preds[b] != 1 {
            continue;
        }
        let next = &residual.blocks[b];
        let Terminator::Branch {
            cc: cc2,
            taken: t2,
            not_taken: nt2,
            ..
        } = next.terminator
        else {
            continue;
        };
        let Some((items, mut start)) = items_when_zero(&next.items, &tested, calc) else {
            continue;
        };
        zero_start(&block.items, &tested, &mut start);
        let Some(holds) = holds_after(calc, &items, &start, cc2) else {
            continue;
        };
        let target = if holds { t2 } else { nt2 };
        let writes = next
            .items
            .iter()
            .fold(0, |acc, item| acc | calc.item(item, None).defs);
        if target == zero && writes & live.live_in[z] == 0 {
            dropped.push((a, b));
        }
    }
    // A block that loses its test must keep the branch another decision
    // relied on: drop none whose `B` loses its own.
    let losing: Vec<usize> = dropped.iter().map(|&(a, _)| a).collect();
    dropped.retain(|&(_, b)| !losing.contains(&b));
    for &(a, b) in &dropped {
        let label = residual.blocks[b].label;
        let block = &mut residual.blocks[a];
        let origin = block.items.pop().map(|i| i.origin());
        let origin = origin.expect("the zero test");
        block.terminator = Terminator::Jump(label, origin);
    }
    dropped.len()
}

#[cfg(test)]
mod tests {
    use iced_x86::code_asm::*;
    use iced_x86::ConditionCode;
    use wiper_residual::Terminator;

    use crate::testutil::{after, asm, block, branch, residual};

    /// `if (*p == 0) return 0; if (*p != 'z') return 0;` and the register
    /// form `test al, al; je` before `cmp al, 'a'; je`: both zero tests
    /// go, and their blocks jump to the compare.
    #[test]
    fn a_zero_test_before_a_compare_with_a_nonzero_constant_goes() {
        let out = |l| {
            let items = asm(|a| {
                a.xor(eax, eax)?;
                a.ret()
            });
            block(l, items, Terminator::Exit)
        };
        let r = residual(vec![
            block(
                0,
                asm(|a| a.cmp(byte_ptr(ecx), 0)),
                branch(ConditionCode::e, 2, 1),
            ),
            block(
                1,
                asm(|a| {
                    a.movzx(eax, byte_ptr(ecx))?;
                    a.cmp(al, 0x7a)
                }),
                branch(ConditionCode::ne, 2, 3),
            ),
            out(2),
            block(
                3,
                asm(|a| {
                    a.movzx(eax, byte_ptr(edx))?;
                    a.test(al, al)
                }),
                branch(ConditionCode::e, 2, 4),
            ),
            block(4, asm(|a| a.cmp(al, 0x61)), branch(ConditionCode::e, 5, 2)),
            out(5),
        ]);
        insta::assert_snapshot!(after(r, super::drop_subsumed_zero_tests), @"
        L0:
          jmp L1
        L1:
          movzx eax,byte [ecx]
          cmp al,7Ah
          jne L2 else L3
        L2:
          xor eax,eax
          ret
          exit
        L3:
          movzx eax,byte [edx]
          jmp L4
        L4:
          cmp al,61h
          je L5 else L2
        L5:
          xor eax,eax
          ret
          exit
        ");
    }

    /// `movzx edx, BYTE PTR [ebx]; test dl, dl; je` before `cmp edx, 'z'`:
    /// the extended register is zero too where the byte is, so the
    /// compare of the whole `edx` decides, and the zero test goes.
    #[test]
    fn a_zero_test_of_an_extended_byte_before_a_compare_of_the_whole_register_goes() {
        let r = residual(vec![
            block(
                0,
                asm(|a| {
                    a.movzx(edx, byte_ptr(ebx))?;
                    a.test(dl, dl)
                }),
                branch(ConditionCode::e, 2, 1),
            ),
            block(
                1,
                asm(|a| a.cmp(edx, 0x7a)),
                branch(ConditionCode::ne, 2, 3),
            ),
            block(
                2,
                asm(|a| {
                    a.xor(eax, eax)?;
                    a.ret()
                }),
                Terminator::Exit,
            ),
            block(
                3,
                asm(|a| {
                    a.mov(eax, 1)?;
                    a.ret()
                }),
                Terminator::Exit,
            ),
        ]);
        let out = after(r, super::drop_subsumed_zero_tests);
        assert!(
            out.starts_with("L0:\n  movzx edx,byte [ebx]\n  jmp L1\n"),
            "{out}"
        );
    }

    /// Near misses: the compare's block loads other memory (`[edx]`, not
    /// the tested `[ecx]`), and, for a register test, it writes `eax`
    /// twice (`mov`, `add`) where the zero target reads it (`ret`).
    #[test]
    fn zero_tests_whose_compare_loads_elsewhere_or_writes_a_live_register_stay() {
        let exit = |l, value| {
            let items = asm(|a| {
                a.mov(eax, value)?;
                a.ret()
            });
            block(l, items, Terminator::Exit)
        };
        let elsewhere = residual(vec![
            block(
                0,
                asm(|a| a.cmp(byte_ptr(ecx), 0)),
                branch(ConditionCode::e, 2, 1),
            ),
            block(
                1,
                asm(|a| {
                    a.movzx(eax, byte_ptr(edx))?;
                    a.cmp(al, 0x7a)
                }),
                branch(ConditionCode::ne, 2, 3),
            ),
            exit(2, 0),
            exit(3, 1),
        ]);
        crate::testutil::assert_unchanged(elsewhere, super::drop_subsumed_zero_tests);
        let writes_twice = residual(vec![
            block(0, asm(|a| a.test(ecx, ecx)), branch(ConditionCode::e, 2, 1)),
            block(
                1,
                asm(|a| {
                    a.mov(eax, ecx)?;
                    a.add(eax, 5)?;
                    a.cmp(eax, 5)
                }),
                branch(ConditionCode::ne, 3, 2),
            ),
            block(2, asm(|a| a.ret()), Terminator::Exit),
            exit(3, 1),
        ]);
        crate::testutil::assert_unchanged(writes_twice, super::drop_subsumed_zero_tests);
    }

    /// Near misses: the compare is with 0 itself (`cmp al, 0`: a zero
    /// byte goes the other way), the compare's block writes `ecx`, which
    /// the zero target reads, and a memory test whose compare reads a
    /// register loaded elsewhere.
    #[test]
    fn zero_tests_that_decide_something_stay() {
        let r = residual(vec![
            block(
                0,
                asm(|a| {
                    a.movzx(eax, byte_ptr(ecx))?;
                    a.test(al, al)
                }),
                branch(ConditionCode::e, 2, 1),
            ),
            block(1, asm(|a| a.cmp(al, 0)), branch(ConditionCode::ne, 2, 3)),
            block(
                2,
                asm(|a| {
                    a.mov(eax, ecx)?;
                    a.ret()
                }),
                Terminator::Exit,
            ),
            block(3, asm(|a| a.test(eax, eax)), branch(ConditionCode::e, 2, 4)),
            block(
                4,
                asm(|a| {
                    a.mov(ecx, 5)?;
                    a.cmp(eax, 7)
                }),
                branch(ConditionCode::ne, 2, 5),
            ),
            block(
                5,
                asm(|a| a.cmp(byte_ptr(edx), 0)),
                branch(ConditionCode::e, 2, 6),
            ),
            block(6, asm(|a| a.cmp(eax, 9)), branch(ConditionCode::ne, 2, 7)),
            block(7, asm(|a| a.ret()), Terminator::Exit),
        ]);
        insta::assert_snapshot!(after(r, super::drop_subsumed_zero_tests), @"
        L0:
          movzx eax,byte [ecx]
          test al,al
          je L2 else L1
        L1:
          cmp al,0
          jne L2 else L3
        L2:
          mov eax,ecx
          ret
          exit
        L3:
          test eax,eax
          je L2 else L4
        L4:
          mov ecx,5
          cmp eax,7
          jne L2 else L5
        L5:
          cmp byte [edx],0
          je L2 else L6
        L6:
          cmp eax,9
          jne L2 else L7
        L7:
          ret
          exit
        ");
    }
}
