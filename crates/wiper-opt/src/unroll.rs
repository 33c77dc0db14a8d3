//! Full unrolling of self-loops whose trip count the code before them
//! fixes: a block that loops to itself while `a != b` (`cmp a,b` or `cmp
//! a,imm`), where `a` and `b` step by constants each turn and enter a known
//! distance apart (by the affine forms of [`crate::affine`] of the block
//! that enters it), runs a known number of turns.
//! Specialization leaves such loops when the function walks a static
//! number of elements with a dynamic pointer (`for (p = a; p != a + n;
//! p++)`): the bound is dynamic, the distance static. Small enough ones
//! become straight-line code, which the offset folding
//! ([`crate::offsets`]) then turns into loads at fixed displacements.

use iced_x86::{Code, ConditionCode, Instruction, OpKind};
use wiper_residual::{Item, Residual, Terminator};

use crate::affine::{Affine, Forms, Value};
use crate::cfg::loop_while_not_zero;
use crate::effects::{Effects, EffectsOf, ALL_FLAGS};
use crate::liveness::{block_index, successors};

/// Most turns unrolled.
const MAX_TURNS: u32 = 16;
/// Most items the unrolled block may have.
const MAX_ITEMS: usize = 96;

/// The affine forms of the registers after `items`, from their values at
/// the start.
fn run(items: &[Item], fx: &[Effects]) -> Forms {
    let mut forms = Forms::at_entry();
    for (item, e) in items.iter().zip(fx) {
        forms.step(item, e);
    }
    forms
}

/// The block's last flag writer, with its index, when it is a 32-bit `cmp`
/// of a register with a register or an immediate (also in the short form
/// `cmp eax,imm32`, which assemblers pick for `eax`).
fn last_compare<'a>(items: &'a [Item], fx: &[Effects]) -> Option<(usize, &'a Instruction)> {
    let k = fx.iter().rposition(|e| e.defs & ALL_FLAGS != 0)?;
    let Item::Instr(cmp, _) = &items[k] else {
        return None;
    };
    (matches!(
        cmp.code(),
        Code::Cmp_rm32_r32
            | Code::Cmp_r32_rm32
            | Code::Cmp_rm32_imm8
            | Code::Cmp_rm32_imm32
            | Code::Cmp_EAX_imm32
    ) && cmp.op0_kind() == OpKind::Register)
        .then_some((k, cmp))
}

/// How many turns a self-loop with body `items` runs when entered with
/// register forms `entry` (of the predecessor), looping while the last
/// compare finds its operands different; `None` when unknown or too many.
fn turns(items: &[Item], fx: &[Effects], entry: &Forms) -> Option<u32> {
    // The operands as the turn's entry values, at the compare and per turn.
    let (k, cmp) = last_compare(items, fx)?;
    let start = Forms::at_entry();
    let (a, b) = (start.operand(cmp, 0)?, start.operand(cmp, 1)?);
    let (before, whole) = (run(&items[..k], &fx[..k]), run(items, fx));
    // An operand at the compare of the first turn, and its step per turn:
    // a constant, or an induction variable (itself plus a constant at the
    // compare and at the end of the turn).
    let first_and_step = |v: Affine| -> Option<(Affine, u32)> {
        let Some(Value(i)) = v.value else {
            return Some((v, 0));
        };
        let i = i as usize;
        let (now, per_turn) = (
            before.regs[i].in_terms_of(v)?,
            whole.regs[i].in_terms_of(v)?,
        );
        (now.0 == 1 && per_turn.0 == 1).then(|| (entry.regs[i].offset_by(now.1), per_turn.1))
    };
    let ((a0, sa), (b0, sb)) = (first_and_step(a)?, first_and_step(b)?);
    // Turn t (from 1) compares a0 + sa*(t-1) with b0 + sb*(t-1).
    let distance = b0.checked_sub(a0)?.as_constant()?;
    let closing = sa.wrapping_sub(sb);
    (0..MAX_TURNS)
        .find(|&m| closing.wrapping_mul(m) == distance)
        .map(|m| m + 1)
}

/// Unrolls every self-loop with a known, small trip count; returns how
/// many.
pub fn unroll_loops(residual: &mut Residual, calc: &mut EffectsOf) -> usize {
    let index_of = block_index(residual);
    let mut preds: Vec<Vec<usize>> = vec![Vec::new(); residual.blocks.len()];
    for (p, block) in residual.blocks.iter().enumerate() {
        for s in successors(&block.terminator) {
            if let Some(&s) = index_of.get(&s) {
                preds[s].push(p);
            }
        }
    }
    let entry = residual.entry.and_then(|l| index_of.get(&l).copied());
    let mut unrolled = 0;
    for (b, block_preds) in preds.iter().enumerate() {
        let block = &residual.blocks[b];
        let Some((exit, origin)) = loop_while_not_zero(block) else {
            continue;
        };
        // One way in from outside, not the function's entry.
        let outside: Vec<usize> = block_preds.iter().copied().filter(|&p| p != b).collect();
        let [p] = outside[..] else { continue };
        if entry == Some(b) {
            continue;
        }
        let fx_of = |items: &[Item], calc: &mut EffectsOf| -> Vec<Effects> {
            items.iter().map(|i| calc.item(i, None)).collect()
        };
        let pred_items = &residual.blocks[p].items;
        let pred_fx = fx_of(pred_items, calc);
        let at_entry = run(pred_items, &pred_fx);
        let fx = fx_of(&block.items, calc);
        let Some(n) = turns(&block.items, &fx, &at_entry) else {
            continue;
        };
        if block.items.len() * n as usize > MAX_ITEMS {
            continue;
        }
        let body = block.items.clone();
        let block = &mut residual.blocks[b];
        block.items = (0..n).flat_map(|_| body.iter().cloned()).collect();
        block.terminator = Terminator::Jump(exit, origin);
        unrolled += 1;
    }
    unrolled
}

/// Decides `je`/`jne` after `cmp a,b` when the block itself makes `a` and
/// `b` forms a constant apart (a pointer and the end of the
/// array it walks); returns how many.
pub fn decide_distances(residual: &mut Residual, calc: &mut EffectsOf) -> usize {
    let mut decided = 0;
    for block in &mut residual.blocks {
        let Terminator::Branch {
            cc,
            taken,
            not_taken,
            origin,
        } = block.terminator
        else {
            continue;
        };
        if !matches!(cc, ConditionCode::e | ConditionCode::ne) {
            continue;
        }
        let fx: Vec<Effects> = block.items.iter().map(|i| calc.item(i, None)).collect();
        let Some((k, cmp)) = last_compare(&block.items, &fx) else {
            continue;
        };
        let forms = run(&block.items[..k], &fx[..k]);
        let difference = forms.operand(cmp, 0).zip(forms.operand(cmp, 1));
        let Some(difference) = difference.and_then(|(a, b)| b.checked_sub(a)?.as_constant()) else {
            continue;
        };
        let equal = difference == 0;
        let holds = equal == (cc == ConditionCode::e);
        block.terminator = Terminator::Jump(if holds { taken } else { not_taken }, origin);
        decided += 1;
    }
    decided
}

#[cfg(test)]
mod tests {
    use iced_x86::code_asm::*;
    use iced_x86::ConditionCode as Cc;
    use wiper_residual::Terminator;

    use crate::testutil::{after, asm, block, branch, jump, residual, two_way};

    /// A walk from `eax` to `ecx` by 4, `setup` relating (or not) the two.
    fn walk(setup: Vec<iced_x86::Instruction>) -> wiper_residual::Residual {
        residual(vec![
            block(0, setup, jump(1)),
            block(
                1,
                asm(|a| {
                    a.add(edx, dword_ptr(eax))?;
                    a.add(eax, 4)?;
                    a.cmp(eax, ecx)
                }),
                branch(Cc::ne, 1, 2),
            ),
            block(2, asm(|a| a.ret()), Terminator::Exit),
        ])
    }

    /// `ecx` is `eax+8`: two turns, straight-line.
    #[test]
    fn a_walk_of_known_length_is_unrolled() {
        let r = walk(asm(|a| a.lea(ecx, ptr(eax + 8))));
        insta::assert_snapshot!(after(r, super::unroll_loops), @"
        L0:
          lea ecx,[eax+8]
          jmp L1
        L1:
          add edx,[eax]
          add eax,4
          cmp eax,ecx
          add edx,[eax]
          add eax,4
          cmp eax,ecx
          jmp L2
        L2:
          ret
          exit
        ");
    }

    /// The unrolled body may have up to `MAX_ITEMS` items: 16 turns of a
    /// 6-item body (96) are unrolled, of a 7-item body (112) not.
    #[test]
    fn a_walk_is_unrolled_up_to_the_bound() {
        let unrolled = |padding: usize| {
            let r = residual(vec![
                block(0, asm(|a| a.lea(ecx, ptr(eax + 64))), jump(1)),
                block(
                    1,
                    asm(|a| {
                        for _ in 0..padding {
                            a.add(esi, dword_ptr(eax))?;
                        }
                        a.add(edx, dword_ptr(eax))?;
                        a.add(eax, 4)?;
                        a.cmp(eax, ecx)
                    }),
                    branch(Cc::ne, 1, 2),
                ),
                block(2, asm(|a| a.ret()), Terminator::Exit),
            ]);
            !after(r, super::unroll_loops).contains("jne L1")
        };
        assert_eq!((super::MAX_TURNS, super::MAX_ITEMS), (16, 96));
        assert!(unrolled(3));
        assert!(!unrolled(4));
    }

    /// Near miss: the end is loaded, not related to the pointer.
    #[test]
    fn a_walk_to_an_unknown_end_stays() {
        let r = walk(asm(|a| a.mov(ecx, dword_ptr(esp + 4))));
        insta::assert_snapshot!(after(r, super::unroll_loops), @"
        L0:
          mov ecx,[esp+4]
          jmp L1
        L1:
          add edx,[eax]
          add eax,4
          cmp eax,ecx
          jne L1 else L2
        L2:
          ret
          exit
        ");
    }

    /// Near miss: `eax` doubles (plus 2) each turn after the compare, no
    /// constant step: 0, 2, 6 meets `ebx` = 6 in the third turn, where
    /// a step of 2 would take four.
    #[test]
    fn a_walk_whose_pointer_is_scaled_stays() {
        let r = residual(vec![
            block(
                0,
                asm(|a| {
                    a.mov(eax, 0)?;
                    a.mov(ebx, 6)
                }),
                jump(1),
            ),
            block(
                1,
                asm(|a| {
                    a.cmp(eax, ebx)?;
                    a.lea(eax, ptr(eax + eax + 2))
                }),
                branch(Cc::ne, 1, 2),
            ),
            block(2, asm(|a| a.ret()), Terminator::Exit),
        ]);
        crate::testutil::assert_unchanged(r, super::unroll_loops);
    }

    /// `je` after comparing `eax` with `eax+8`: never taken.
    #[test]
    fn a_compare_of_known_distance_is_decided() {
        let r = two_way(
            asm(|a| {
                a.lea(ecx, ptr(eax + 8))?;
                a.cmp(eax, ecx)
            }),
            Cc::e,
        );
        insta::assert_snapshot!(after(r, super::decide_distances), @"
        L0:
          lea ecx,[eax+8]
          cmp eax,ecx
          jmp L2
        L1:
          ret
          exit
        L2:
          ret
          exit
        ");
    }

    /// A decided compare is counted (the constant rounds go on while
    /// something is).
    #[test]
    fn a_decided_compare_is_counted() {
        let mut r = two_way(
            asm(|a| {
                a.lea(ecx, ptr(eax + 8))?;
                a.cmp(eax, ecx)
            }),
            Cc::e,
        );
        let mut calc = crate::effects::EffectsOf::for_residual(&r);
        assert_eq!(super::decide_distances(&mut r, &mut calc), 1);
    }

    /// Near miss: `ecx` is loaded, so the distance is unknown.
    #[test]
    fn a_compare_of_unknown_distance_stays() {
        let r = two_way(
            asm(|a| {
                a.mov(ecx, dword_ptr(esp + 4))?;
                a.cmp(eax, ecx)
            }),
            Cc::e,
        );
        insta::assert_snapshot!(after(r, super::decide_distances), @"
        L0:
          mov ecx,[esp+4]
          cmp eax,ecx
          je L1 else L2
        L1:
          ret
          exit
        L2:
          ret
          exit
        ");
    }

    /// L0 sets `eax` to `start`, L1 counts it up to 3 (`cmp eax,imm`).
    fn count_to_three(start: u32) -> wiper_residual::Residual {
        residual(vec![
            block(0, asm(|a| a.mov(eax, start)), jump(1)),
            block(
                1,
                asm(|a| {
                    a.inc(eax)?;
                    a.add(edx, eax)?;
                    a.cmp(eax, 3)
                }),
                branch(Cc::ne, 1, 2),
            ),
            block(2, asm(|a| a.ret()), Terminator::Exit),
        ])
    }

    /// From 0 to 3 by 1: three turns.
    #[test]
    fn a_count_to_a_constant_is_unrolled() {
        insta::assert_snapshot!(after(count_to_three(0), super::unroll_loops), @"
        L0:
          mov eax,0
          jmp L1
        L1:
          inc eax
          add edx,eax
          cmp eax,3
          inc eax
          add edx,eax
          cmp eax,3
          inc eax
          add edx,eax
          cmp eax,3
          jmp L2
        L2:
          ret
          exit
        ");
    }

    /// Near miss: from 3 (the first compare sees 4) the count wraps
    /// around: 2^32 - 1 turns, too many.
    #[test]
    fn a_count_of_too_many_turns_stays() {
        insta::assert_snapshot!(after(count_to_three(3), super::unroll_loops), @"
        L0:
          mov eax,3
          jmp L1
        L1:
          inc eax
          add edx,eax
          cmp eax,3
          jne L1 else L2
        L2:
          ret
          exit
        ");
    }

    /// `je` after comparing `eax+8` with the immediate 8, where `eax` was
    /// set to 0 (`cmp eax,imm32` in its short form): always taken.
    #[test]
    fn a_compare_with_an_immediate_of_known_distance_is_decided() {
        let r = two_way(
            asm(|a| {
                a.mov(eax, 0)?;
                a.add(eax, 8)?;
                a.cmp(eax, 8)
            }),
            Cc::e,
        );
        insta::assert_snapshot!(after(r, super::decide_distances), @"
        L0:
          mov eax,0
          add eax,8
          cmp eax,8
          jmp L1
        L1:
          ret
          exit
        L2:
          ret
          exit
        ");
    }
}
