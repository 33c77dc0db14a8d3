//! Branches decided by the branch before them: a block entered only along
//! the edge of a branch on `r == 0` (or on `r != 0`) that tests `r` against
//! zero again, `r` unchanged, always goes the same way. Its conditional
//! branch becomes a jump. (Specialization makes these: an interpreter's
//! `if (c)` and its loop test `while (c)` on the same value end up next to
//! each other in the residual code.)

use iced_x86::{ConditionCode, Register};
use wiper_residual::{Item, Residual, Terminator};

use crate::effects::{reg_bit, zero_test, EffectsOf, ALL_FLAGS};
use crate::liveness::{block_index, successors};

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

/// Decides the branches that a single predecessor's branch on the same
/// zero test already decided; returns how many.
pub fn decide_repeated_tests(residual: &mut Residual, calc: &mut EffectsOf) -> usize {
    let index = block_index(residual);
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
    let mut decided = Vec::new();
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
        let Some((r, _)) = block_zero_test(&block.items, cc, calc) else {
            continue;
        };
        // Along `taken`, `r == 0` holds iff the branch is `je`.
        for (target, zero) in [
            (taken, cc == ConditionCode::e),
            (not_taken, cc != ConditionCode::e),
        ] {
            let Some(&s) = index.get(&target) else {
                continue;
            };
            if s == b || preds[s] != 1 || taken == not_taken {
                continue;
            }
            let next = &residual.blocks[s];
            let Terminator::Branch {
                cc: cc2,
                taken: t2,
                not_taken: n2,
                origin,
            } = next.terminator
            else {
                continue;
            };
            let Some((r2, k)) = block_zero_test(&next.items, cc2, calc) else {
                continue;
            };
            let unchanged = next.items[..k]
                .iter()
                .all(|item| calc.item(item, None).defs & reg_bit(r).unwrap_or(!0) == 0);
            if r2 == r && unchanged {
                let holds = (cc2 == ConditionCode::e) == zero;
                decided.push((s, Terminator::Jump(if holds { t2 } else { n2 }, origin)));
            }
        }
    }
    let count = decided.len();
    for (s, t) in decided {
        residual.blocks[s].terminator = t;
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
}
