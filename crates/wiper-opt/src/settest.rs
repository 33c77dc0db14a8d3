//! Branches on a condition turned into a value and tested again: `sete
//! al; movzx eax, al; test eax, eax; jne T` is `je T` when nothing reads
//! `eax` or the flags afterwards. (A function that returns `*p == '\0'`,
//! inlined into its caller's `if (...)`, leaves this shape.)
//!
//! A block ending in `je`/`jne` whose last item is `test r, r` (or `cmp r,
//! 0`), where `r` is the byte a `setCC` wrote or the register a `movzx` or
//! `movsx` extended that byte into, with only items between them that
//! write no flag and neither read nor write `r`'s register, and whose
//! register and flags are dead on both edges, loses the `setCC`, the
//! extension and the test, and branches on `CC` itself (for `je` with
//! its arms swapped: the value is zero where `CC` did not hold).

use iced_x86::{Code, ConditionCode, OpKind};
use wiper_residual::{Item, Residual, Terminator};

use crate::effects::{is_setcc, reg_bit, zero_test, EffectsOf, Locs, ALL_FLAGS};
use crate::liveness::{block_index, liveness};

/// What [`set_then_test`] finds.
struct SetThenTest {
    /// Indices of the `setCC`, the extension (if any) and the test.
    items: Vec<usize>,
    /// The `setCC`'s condition.
    cc: ConditionCode,
    /// The tested register's location bit.
    reg: Locs,
}

/// The `setCC` (and extension) whose value the block's last item tests,
/// when only items that leave it and the flags alone come between.
fn set_then_test(items: &[Item], calc: &mut EffectsOf) -> Option<SetThenTest> {
    let last = items.len().checked_sub(1)?;
    let tested = zero_test(&items[last])?;
    let reg = reg_bit(tested.full_register32())?;
    let mut wanted = tested;
    let mut found = vec![last];
    for k in (0..last).rev() {
        let Item::Instr(ins, _) = &items[k] else {
            return None;
        };
        let writes_wanted = ins.op_count() > 0
            && ins.op0_kind() == OpKind::Register
            && ins.op0_register() == wanted;
        if writes_wanted && is_setcc(ins) && wanted.size() == 1 {
            found.push(k);
            return Some(SetThenTest {
                items: found,
                cc: ins.condition_code(),
                reg,
            });
        }
        if writes_wanted
            && found.len() == 1
            && matches!(ins.code(), Code::Movzx_r32_rm8 | Code::Movsx_r32_rm8)
            && ins.op1_kind() == OpKind::Register
            && ins.op1_register().full_register32() == tested.full_register32()
        {
            found.push(k);
            wanted = ins.op1_register();
            continue;
        }
        let fx = calc.item(&items[k], None);
        if fx.defs & (ALL_FLAGS | reg) != 0 || fx.uses & reg != 0 || fx.leaves {
            return None;
        }
    }
    None
}

/// Folds every branch on a tested `setCC` value into a branch on `CC`
/// (see the module documentation); returns how many.
pub fn fold_set_and_test(residual: &mut Residual, calc: &mut EffectsOf) -> usize {
    let live = liveness(residual, &calc.residual(residual));
    let index = block_index(residual);
    let mut folded = 0;
    for b in 0..residual.blocks.len() {
        let Terminator::Branch {
            cc,
            taken,
            not_taken,
            origin,
        } = residual.blocks[b].terminator
        else {
            continue;
        };
        if !matches!(cc, ConditionCode::e | ConditionCode::ne) {
            continue;
        }
        let Some(found) = set_then_test(&residual.blocks[b].items, calc) else {
            continue;
        };
        let dead = |l| {
            index
                .get(&l)
                .is_some_and(|&s| live.live_in[s] & (found.reg | ALL_FLAGS) == 0)
        };
        if !dead(taken) || !dead(not_taken) {
            continue;
        }
        let block = &mut residual.blocks[b];
        let mut k = 0;
        block.items.retain(|_| {
            k += 1;
            !found.items.contains(&(k - 1))
        });
        // `jne` goes where `CC` held; `je` where it did not: its arms swap.
        let (taken, not_taken) = if cc == ConditionCode::ne {
            (taken, not_taken)
        } else {
            (not_taken, taken)
        };
        block.terminator = Terminator::Branch {
            cc: found.cc,
            taken,
            not_taken,
            origin,
        };
        folded += 1;
    }
    folded
}

#[cfg(test)]
mod tests {
    use iced_x86::code_asm::*;
    use iced_x86::ConditionCode;
    use wiper_residual::Terminator;

    use crate::testutil::{after, asm, block, branch, residual};

    /// Near miss: the tested value is copied (`mov ebx,eax`) before the
    /// test, so the `sete` and the `movzx` must stay for the copy.
    #[test]
    fn a_tested_value_copied_before_the_test_stays() {
        let ret = || {
            asm(|a| {
                a.xor(eax, eax)?;
                a.ret()
            })
        };
        let r = crate::testutil::diamond(
            asm(|a| {
                a.cmp(ecx, 3)?;
                a.sete(al)?;
                a.movzx(eax, al)?;
                a.mov(ebx, eax)?;
                a.test(eax, eax)
            }),
            ConditionCode::ne,
            ret(),
            ret(),
        );
        crate::testutil::assert_unchanged(r, super::fold_set_and_test);
    }

    /// Near miss: `movzx ecx,al` extends the tested byte into another
    /// register, which both arms read: the `sete` and the extension stay.
    #[test]
    fn a_tested_byte_extended_into_another_register_stays() {
        let ret = || {
            asm(|a| {
                a.mov(eax, ecx)?;
                a.ret()
            })
        };
        let r = crate::testutil::diamond(
            asm(|a| {
                a.cmp(edx, 3)?;
                a.sete(al)?;
                a.movzx(ecx, al)?;
                a.test(al, al)
            }),
            ConditionCode::ne,
            ret(),
            ret(),
        );
        crate::testutil::assert_unchanged(r, super::fold_set_and_test);
    }

    /// `cmp byte [edx], 0; sete dl; movzx edx, dl; pop ebx; test edx, edx;
    /// jne` becomes `cmp byte [edx], 0; pop ebx; je`; `setl cl; test cl,
    /// cl; je L2 else L3` becomes `jl L3 else L2`.
    #[test]
    fn a_tested_condition_value_becomes_the_branch_condition() {
        let exit = |l| {
            let items = asm(|a| {
                a.xor(eax, eax)?;
                a.xor(edx, edx)?;
                a.ret()
            });
            block(l, items, Terminator::Exit)
        };
        let r = residual(vec![
            block(
                0,
                asm(|a| {
                    a.cmp(byte_ptr(edx), 0)?;
                    a.sete(dl)?;
                    a.movzx(edx, dl)?;
                    a.pop(ebx)?;
                    a.test(edx, edx)
                }),
                branch(ConditionCode::ne, 1, 2),
            ),
            block(
                1,
                asm(|a| {
                    a.cmp(eax, 5)?;
                    a.setl(cl)?;
                    a.test(cl, cl)
                }),
                branch(ConditionCode::e, 2, 3),
            ),
            exit(2),
            exit(3),
        ]);
        let mut counted = r.clone();
        let mut calc = crate::effects::EffectsOf::for_residual(&counted);
        let folded = super::fold_set_and_test(&mut counted, &mut calc);
        assert_eq!(folded, 2, "both branches are counted as folded");
        insta::assert_snapshot!(after(r, super::fold_set_and_test), @"
        L0:
          cmp byte [edx],0
          pop ebx
          je L1 else L2
        L1:
          cmp eax,5
          jl L3 else L2
        L2:
          xor eax,eax
          xor edx,edx
          ret
          exit
        L3:
          xor eax,eax
          xor edx,edx
          ret
          exit
        ");
    }

    /// Near misses: the value is read after the branch (`eax` at `ret`),
    /// an item between writes the flags (`add`), the extension is of
    /// another byte.
    #[test]
    fn condition_values_that_are_used_or_overwritten_stay() {
        let ret = |l| block(l, asm(|a| a.ret()), Terminator::Exit);
        let r = residual(vec![
            block(
                0,
                asm(|a| {
                    a.cmp(ecx, 1)?;
                    a.setb(al)?;
                    a.movzx(eax, al)?;
                    a.test(eax, eax)
                }),
                branch(ConditionCode::ne, 1, 2),
            ),
            block(
                1,
                asm(|a| {
                    a.cmp(ecx, 2)?;
                    a.setg(cl)?;
                    a.add(ebx, 1)?;
                    a.test(cl, cl)
                }),
                branch(ConditionCode::e, 2, 3),
            ),
            block(
                2,
                asm(|a| {
                    a.cmp(ecx, 3)?;
                    a.sete(bl)?;
                    a.movzx(ecx, dl)?;
                    a.test(ecx, ecx)
                }),
                branch(ConditionCode::e, 3, 4),
            ),
            ret(3),
            ret(4),
        ]);
        insta::assert_snapshot!(after(r, super::fold_set_and_test), @"
        L0:
          cmp ecx,1
          setb al
          movzx eax,al
          test eax,eax
          jne L1 else L2
        L1:
          cmp ecx,2
          setg cl
          add ebx,1
          test cl,cl
          je L2 else L3
        L2:
          cmp ecx,3
          sete bl
          movzx ecx,dl
          test ecx,ecx
          je L3 else L4
        L3:
          ret
          exit
        L4:
          ret
          exit
        ");
    }
}
