//! Branches decided by the branch before them: a block entered only along
//! the edge of a branch on `r == 0` (or on `r != 0`) that tests `r` against
//! zero again, `r` unchanged, always goes the same way. Its conditional
//! branch becomes a jump. (Specialization makes these: an interpreter's
//! `if (c)` and its loop test `while (c)` on the same value end up next to
//! each other in the residual code.)

use iced_x86::{ConditionCode, Register};
use wiper_emit::{Item, Residual, Terminator};

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
