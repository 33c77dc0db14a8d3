//! Saves that one arm of a branch undoes at once: an inlined callee saves
//! registers with `push` on entry, tests something, and on one arm
//! restores them with `pop` straight away (`push esi; push ebx; movzx
//! eax,[ebx]; cmp al,'a'; je found` then `pop ebx; pop esi` where the
//! character is not `'a'`). The pushes belong on the other arm.
//!
//! Two moves, repeated:
//! - *Joining*: when every way into a block is a jump from a block that
//!   ends with the same `push`es (identical instructions), those pushes
//!   move into the block's start (each path still runs them once).
//! - *Sinking*: a block whose last `push`es are followed only by items
//!   that neither use the stack pointer nor write a pushed register, and
//!   that branches to a successor starting with the matching `pop`s (in
//!   reverse order) and to another, each entered from this block alone:
//!   the pushes move to the start of the other successor, and the `pop`s
//!   go. Along the first arm the registers keep the values the `pop`s
//!   restored; the stack pointer is the same; the words the pushes wrote
//!   below it are not read (nothing reads below the stack pointer).

use iced_x86::{Code, FlowControl, OpKind, Register};
use wiper_residual::{Item, Residual, Terminator};

use crate::effects::{reg_bit, EffectsOf, Locs};
use crate::liveness::{block_index, successor_indices};
use crate::sink::predecessor_counts;

/// The register `item` pushes or pops (`push r32`/`pop r32`, not `esp`).
fn stack_reg(item: &Item, code: Code) -> Option<Register> {
    match item {
        Item::Instr(ins, _) if ins.code() == code && ins.op0_register() != Register::ESP => {
            Some(ins.op0_register())
        }
        _ => None,
    }
}

/// Whether `item` neither moves nor reads the stack pointer and does not
/// transfer control.
fn ignores_esp(item: &Item) -> bool {
    match item {
        Item::Instr(ins, _) => {
            ins.stack_pointer_increment() == 0
                && ins.flow_control() == FlowControl::Next
                && ins.memory_base() != Register::ESP
                && ins.memory_index() != Register::ESP
                && (0..ins.op_count()).all(|k| {
                    ins.op_kind(k) != OpKind::Register || ins.op_register(k) != Register::ESP
                })
        }
        Item::Address { .. } => true,
        Item::CallLabel(..) => false,
    }
}

/// Moves the pushes that end every block jumping to a block into its
/// start (see the module docs); returns how many blocks gained some.
fn join_pushes(residual: &mut Residual) -> usize {
    let index = block_index(residual);
    let preds = predecessor_counts(residual);
    let mut jumps_to: Vec<Vec<usize>> = vec![Vec::new(); residual.blocks.len()];
    for (p, block) in residual.blocks.iter().enumerate() {
        if let Terminator::Jump(l, _) = block.terminator {
            if let Some(&b) = index.get(&l) {
                jumps_to[b].push(p);
            }
        }
    }
    let mut joined = 0;
    for (b, from) in jumps_to.iter().enumerate() {
        if from.is_empty() || from.len() != preds[b] || from.contains(&b) {
            continue;
        }
        let trailing = |p: usize| {
            let items = &residual.blocks[p].items;
            let n = items
                .iter()
                .rev()
                .take_while(|i| stack_reg(i, Code::Push_r32).is_some())
                .count();
            &items[items.len() - n..]
        };
        let mut common = trailing(from[0]).to_vec();
        for &p in &from[1..] {
            let other = trailing(p);
            let same = common
                .iter()
                .rev()
                .zip(other.iter().rev())
                .take_while(
                    |(a, b)| matches!((a, b), (Item::Instr(x, _), Item::Instr(y, _)) if x == y),
                )
                .count();
            common.drain(..common.len() - same);
        }
        if common.is_empty() {
            continue;
        }
        for &p in from {
            let items = &mut residual.blocks[p].items;
            items.truncate(items.len() - common.len());
        }
        let items = &mut residual.blocks[b].items;
        items.splice(0..0, common);
        joined += 1;
    }
    joined
}

/// Sinks the pushes that one arm of a branch pops at once into the other
/// arm (see the module docs); returns how many blocks lost theirs.
fn sink_pushes(residual: &mut Residual, calc: &mut EffectsOf) -> usize {
    let succ = successor_indices(residual);
    let preds = predecessor_counts(residual);
    let mut sunk = 0;
    for (b, targets) in succ.iter().enumerate() {
        let Terminator::Branch { .. } = residual.blocks[b].terminator else {
            continue;
        };
        let [t, f] = targets[..] else { continue };
        if t == f || t == b || f == b || preds[t] != 1 || preds[f] != 1 {
            continue;
        }
        let items = &residual.blocks[b].items;
        let after = items.iter().rev().take_while(|i| ignores_esp(i)).count();
        let end = items.len() - after;
        let pushes: Vec<Register> = items[..end]
            .iter()
            .rev()
            .map_while(|i| stack_reg(i, Code::Push_r32))
            .collect();
        if pushes.is_empty() {
            continue;
        }
        let pushed_bits: Locs = pushes
            .iter()
            .filter_map(|&r| reg_bit(r))
            .fold(0, |a, x| a | x);
        let writes_pushed = items[end..]
            .iter()
            .any(|i| calc.item(i, None).defs & pushed_bits != 0);
        if writes_pushed {
            continue;
        }
        // `pushes` is last-pushed first: the pops come in that order.
        let pops = |s: usize| {
            let its = &residual.blocks[s].items;
            its.len() >= pushes.len()
                && pushes
                    .iter()
                    .zip(its)
                    .all(|(&r, i)| stack_reg(i, Code::Pop_r32) == Some(r))
        };
        let (popping, keeping) = if pops(f) {
            (f, t)
        } else if pops(t) {
            (t, f)
        } else {
            continue;
        };
        let n = pushes.len();
        let moved: Vec<Item> = residual.blocks[b].items.drain(end - n..end).collect();
        residual.blocks[popping].items.drain(..n);
        residual.blocks[keeping].items.splice(0..0, moved);
        sunk += 1;
    }
    sunk
}

/// Joins and sinks pushes until nothing moves (at most 8 rounds); returns
/// how many moves.
pub fn move_pushes(residual: &mut Residual, calc: &mut EffectsOf) -> usize {
    let mut moved = 0;
    for _ in 0..8 {
        let round = join_pushes(residual) + sink_pushes(residual, calc);
        if round == 0 {
            break;
        }
        moved += round;
    }
    moved
}

#[cfg(test)]
mod tests {
    use iced_x86::code_asm::*;
    use iced_x86::ConditionCode;
    use wiper_residual::Terminator;

    use crate::testutil::{after, asm, block, branch, jump, residual};

    /// Near miss: `mov eax,esp` after the push reads the stack pointer the
    /// push lowered; the push cannot move past it into the other arm.
    #[test]
    fn a_push_before_a_copy_of_the_stack_pointer_stays() {
        let r = residual(vec![
            block(
                0,
                asm(|a| {
                    a.push(esi)?;
                    a.mov(eax, esp)?;
                    a.test(ecx, ecx)
                }),
                branch(ConditionCode::e, 1, 2),
            ),
            block(
                1,
                asm(|a| {
                    a.pop(esi)?;
                    a.ret()
                }),
                Terminator::Exit,
            ),
            block(
                2,
                asm(|a| {
                    a.mov(eax, dword_ptr(eax))?;
                    a.pop(esi)?;
                    a.ret()
                }),
                Terminator::Exit,
            ),
        ]);
        crate::testutil::assert_unchanged(r, super::move_pushes);
    }

    /// Two ways into a test push `esi` and `ebx`; where the character is
    /// not `'a'` they are popped at once. The pushes join into the test's
    /// block, then sink into the arm that keeps them, and the pops go.
    #[test]
    fn saves_one_arm_undoes_at_once_move_to_the_other() {
        let exit = |l| {
            let items = asm(|a| {
                a.mov(eax, 0)?;
                a.ret()
            });
            block(l, items, Terminator::Exit)
        };
        let r = residual(vec![
            block(0, asm(|a| a.test(ecx, ecx)), branch(ConditionCode::e, 1, 2)),
            block(
                1,
                asm(|a| {
                    a.inc(ebx)?;
                    a.push(esi)?;
                    a.push(ebx)
                }),
                jump(3),
            ),
            block(
                2,
                asm(|a| {
                    a.push(esi)?;
                    a.push(ebx)
                }),
                jump(3),
            ),
            block(
                3,
                asm(|a| {
                    a.movzx(eax, byte_ptr(ebx))?;
                    a.cmp(al, 0x61)
                }),
                branch(ConditionCode::e, 4, 5),
            ),
            block(
                4,
                asm(|a| {
                    a.mov(edx, dword_ptr(esp))?;
                    a.pop(ebx)?;
                    a.pop(esi)
                }),
                jump(6),
            ),
            block(
                5,
                asm(|a| {
                    a.pop(ebx)?;
                    a.pop(esi)
                }),
                jump(6),
            ),
            exit(6),
        ]);
        let mut counted = r.clone();
        let mut calc = crate::effects::EffectsOf::for_residual(&counted);
        assert!(
            super::move_pushes(&mut counted, &mut calc) > 0,
            "moves are counted"
        );
        insta::assert_snapshot!(after(r, super::move_pushes), @"
        L0:
          test ecx,ecx
          je L1 else L2
        L1:
          inc ebx
          jmp L3
        L2:
          jmp L3
        L3:
          movzx eax,byte [ebx]
          cmp al,61h
          je L4 else L5
        L4:
          push esi
          push ebx
          mov edx,[esp]
          pop ebx
          pop esi
          jmp L6
        L5:
          jmp L6
        L6:
          mov eax,0
          ret
          exit
        ");
    }

    /// Pushes that only join (L3 ends in a `ret`, so there is no arm to
    /// sink them into) are counted too: the clean-up runs again on them.
    #[test]
    fn joined_pushes_are_counted() {
        let r = residual(vec![
            block(0, asm(|a| a.test(ecx, ecx)), branch(ConditionCode::e, 1, 2)),
            block(
                1,
                asm(|a| {
                    a.inc(ebx)?;
                    a.push(esi)
                }),
                jump(3),
            ),
            block(2, asm(|a| a.push(esi)), jump(3)),
            block(
                3,
                asm(|a| {
                    a.mov(eax, dword_ptr(esp))?;
                    a.pop(esi)?;
                    a.ret()
                }),
                Terminator::Exit,
            ),
        ]);
        let mut counted = r.clone();
        let mut calc = crate::effects::EffectsOf::for_residual(&counted);
        assert_eq!(super::move_pushes(&mut counted, &mut calc), 1);
        insta::assert_snapshot!(after(r, super::move_pushes), @"
        L0:
          test ecx,ecx
          je L1 else L2
        L1:
          inc ebx
          jmp L3
        L2:
          jmp L3
        L3:
          push esi
          mov eax,[esp]
          pop esi
          ret
          exit
        ");
    }

    /// A push before the test of a branch whose one arm pops it at once
    /// sinks into the other arm (nothing to join), and the move is
    /// counted: the clean-up runs again on it.
    #[test]
    fn a_push_before_one_test_sinks_and_is_counted() {
        let r = residual(vec![
            block(
                0,
                asm(|a| {
                    a.push(esi)?;
                    a.test(ecx, ecx)
                }),
                branch(ConditionCode::e, 1, 2),
            ),
            block(
                1,
                asm(|a| {
                    a.mov(edx, dword_ptr(esp))?;
                    a.pop(esi)?;
                    a.ret()
                }),
                Terminator::Exit,
            ),
            block(
                2,
                asm(|a| {
                    a.pop(esi)?;
                    a.ret()
                }),
                Terminator::Exit,
            ),
        ]);
        let mut moved = r;
        let mut calc = crate::effects::EffectsOf::for_residual(&moved);
        assert_eq!(super::move_pushes(&mut moved, &mut calc), 1);
        insta::assert_snapshot!(crate::testutil::listing(&moved), @"
        L0:
          test ecx,ecx
          je L1 else L2
        L1:
          push esi
          mov edx,[esp]
          pop esi
          ret
          exit
        L2:
          ret
          exit
        ");
    }
}
