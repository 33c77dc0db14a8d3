//! Closed forms of counted loops: a block that loops to itself while a
//! counter register, stepped by one each turn, is not zero, and that only
//! adds constants to registers, runs `n` turns where `n` is the counter's
//! entry value (stepping down; its negation stepping up), every added
//! register gains `n` times its step, and the counter ends at zero. So the
//! loop becomes `add r, counter` (or `sub`; repeated for steps up to
//! ±3; an `imul` into a free register for other steps) per register and
//! `mov counter, 0`. A rotated loop (block `a` jumps to block `b`, which
//! branches back to `a`) is the self-loop `a; b` entered at `a`: its closed
//! form replaces `a`, and `b` stays for code that enters at `b`.
//!
//! Arithmetic is modulo the width `w` of the counter, and that is exact: an
//! entry value of 0 runs `2^w` turns, which adds `step * 2^w`, i.e.
//! nothing, to every register no wider than the counter. Brainfuck's
//! `[>+<-]` is this loop, and specialization leaves it in the residual with
//! the tape cells in registers.

use std::collections::HashMap;

use iced_x86::{Code, ConditionCode, Instruction, OpKind, Register};
use wiper_residual::{Item, Label, Origin, Residual, Terminator};
use wiper_x86::reg::is_high_byte;

use crate::cfg::loop_while_not_zero;
use crate::effects::{
    constant_step, low_byte, reg_bit, reg_of_bit, zero_test, Effects, EffectsOf, ALL_FLAGS,
    ALL_REGS,
};
use crate::liveness::{block_index, liveness};

/// The constant an instruction adds to its register operand: `inc`,
/// `dec`, `add r,imm`, `sub r,imm` (modulo the register's width).
fn step_of(ins: &Instruction) -> Option<(Register, u32)> {
    constant_step(ins).filter(|(r, _)| r.is_gpr8() || r.is_gpr32())
}

/// Largest multiple of the counter the closed form adds by repeated
/// additions rather than by a product in a free register.
const SMALL_MULTIPLE: u32 = 3;

/// The width mask of a byte or dword register.
fn mask(r: Register) -> u32 {
    if r.is_gpr8() {
        0xff
    } else {
        !0
    }
}

/// Whether two registers share bits (`al` and `eax` do, `al` and `ah`
/// do not).
fn overlap(a: Register, b: Register) -> bool {
    a.full_register32() == b.full_register32() && (a == b || !(a.is_gpr8() && b.is_gpr8()))
}

/// `reg` (a byte register or any part of a dword one) as an operand of
/// the width of `like`.
fn as_wide_as(reg: Register, like: Register) -> Option<Register> {
    match (like.is_gpr8(), reg.is_gpr8()) {
        (true, true) => Some(reg),
        (true, false) => low_byte(reg),
        (false, false) => Some(reg.full_register32()),
        (false, true) => None,
    }
}

/// Whether `item` sets ZF from the value of `r` (as it is after the
/// item): a zero test of `r` or one of the stepping instructions on `r`.
fn sets_zf_of(item: &Item, r: Register) -> bool {
    let Item::Instr(ins, _) = item else {
        return false;
    };
    zero_test(item) == Some(r)
        || ins.op0_kind() == OpKind::Register
            && ins.op0_register() == r
            && step_of(ins).is_some_and(|(s, _)| s == r)
}

/// A self-loop's closed form: the items that replace its body.
fn closed_form(items: &[Item], fx: &[Effects], free: u128) -> Option<Vec<Item>> {
    // The total step of each register, in order of first appearance.
    let mut steps: Vec<(Register, u32)> = Vec::new();
    let mut flag_source = None;
    for (k, item) in items.iter().enumerate() {
        let Item::Instr(ins, _) = item else {
            return None;
        };
        if fx[k].side_effect || fx[k].uses & !(ALL_REGS | ALL_FLAGS) != 0 {
            return None;
        }
        if fx[k].defs & ALL_FLAGS != 0 {
            flag_source = Some(k);
        }
        if let Some((r, s)) = step_of(ins) {
            match steps.iter_mut().find(|(q, _)| overlap(*q, r)) {
                Some((q, total)) if *q == r => *total = total.wrapping_add(s) & mask(r),
                Some(_) => return None, // one register at two widths
                None => steps.push((r, s & mask(r))),
            }
        } else if zero_test(item).is_none() {
            return None; // neither a step nor a zero test
        }
    }
    // The counter: the register whose value the final ZF reflects.
    let Item::Instr(test, origin) = &items[flag_source?] else {
        return None;
    };
    let counter = test.op0_register();
    if !sets_zf_of(&items[flag_source?], counter) {
        return None;
    }
    let written_after = &fx[flag_source? + 1..];
    if written_after
        .iter()
        .any(|e| reg_bit(counter).is_some_and(|b| e.defs & b != 0))
    {
        return None;
    }
    let &(c, c_step) = steps.iter().find(|(q, _)| overlap(*q, counter))?;
    if c != counter {
        return None;
    }
    // Turns: the entry value stepping down, its negation stepping up.
    let down = match c_step {
        s if s == mask(c) => true,
        1 => false,
        _ => return None,
    };
    let origin = *origin;
    let mut out = Vec::new();
    let push = |out: &mut Vec<Item>, ins: Option<Instruction>| -> Option<()> {
        out.push(Item::Instr(ins?, origin));
        Some(())
    };
    let mut free = free;
    // A free register (one with a low byte when `byte`).
    let mut take_free = |byte: bool| -> Option<Register> {
        let bit = (0..8).find(|&i| free & (1 << i) != 0 && (!byte || i < 4))?;
        free &= !(1 << bit);
        Some(reg_of_bit(bit))
    };
    // A 32-bit register whose low bits are the counter's.
    let mut counter32 = (!is_high_byte(c)).then(|| c.full_register32());
    let (mov, movzx) = (Code::Mov_r32_rm32, Code::Movzx_r32_rm8);
    for (r, step) in steps {
        if r == c || step == 0 {
            continue;
        }
        if mask(r) > mask(c) {
            return None; // a wider register would see the 2^w turns
        }
        // r += step * turns, with turns = c (down) or -c (up).
        let effective = if down {
            step
        } else {
            step.wrapping_neg() & mask(r)
        };
        // A small multiple of the counter (up to `SMALL_MULTIPLE` times,
        // added or subtracted) is repeated additions, which need no free
        // register when the counter has a part of r's width.
        let small = if effective <= SMALL_MULTIPLE {
            Some((effective, false))
        } else {
            let negated = mask(r).wrapping_sub(effective).wrapping_add(1) & mask(r);
            (negated <= SMALL_MULTIPLE).then_some((negated, true))
        };
        let (source, times, negative) = match (as_wide_as(c, r), small) {
            (Some(narrow), Some((n, negative))) => (narrow, n, negative),
            (None, Some((1, negative))) => {
                // The counter has no part of r's width: copy it.
                let t = take_free(r.is_gpr8())?;
                push(
                    &mut out,
                    Instruction::with2(mov, t, c.full_register32()).ok(),
                )?;
                (as_wide_as(t, r)?, 1, negative)
            }
            _ => {
                let c32 = match counter32 {
                    Some(c32) => c32,
                    None => {
                        let t = take_free(false)?;
                        push(&mut out, Instruction::with2(movzx, t, c).ok())?;
                        counter32 = Some(t);
                        t
                    }
                };
                let t = take_free(r.is_gpr8())?;
                let imul = Instruction::with3(Code::Imul_r32_rm32_imm32, t, c32, effective as i32);
                push(&mut out, imul.ok())?;
                (as_wide_as(t, r)?, 1, false)
            }
        };
        let code = match (r.is_gpr8(), negative) {
            (true, false) => Code::Add_r8_rm8,
            (true, true) => Code::Sub_r8_rm8,
            (false, false) => Code::Add_r32_rm32,
            (false, true) => Code::Sub_r32_rm32,
        };
        for _ in 0..times {
            push(&mut out, Instruction::with2(code, r, source).ok())?;
        }
    }
    let zero = if c.is_gpr8() {
        Instruction::with2(Code::Mov_r8_imm8, c, 0)
    } else {
        Instruction::with2(Code::Mov_r32_imm32, c, 0)
    };
    push(&mut out, zero.ok())?;
    Some(out)
}

/// A counted loop's blocks: `parts`, in the order one turn runs them, form
/// the body; the closed form replaces the items of block `replace` and
/// jumps to `exit`.
struct LoopShape {
    replace: usize,
    parts: Vec<usize>,
    exit: Label,
    origin: Origin,
}

/// The loop at block `b`, if it is one the closed form may replace:
/// - a block that loops to itself while not zero;
/// - a rotated loop, as gcc and the specializer lay out `while` loops: `b`
///   branches back (while not zero) to a block `a` that jumps to `b`.
///   Whatever enters at `a` runs the loop `a; b` from its top, and what
///   enters at `b` runs `b` once and then that loop (or leaves), so the
///   closed form of `a; b` replaces `a`, and `b` stays.
fn loop_shape(residual: &Residual, index: &HashMap<Label, usize>, b: usize) -> Option<LoopShape> {
    let block = &residual.blocks[b];
    if let Some((exit, origin)) = loop_while_not_zero(block) {
        return Some(LoopShape {
            replace: b,
            parts: vec![b],
            exit,
            origin,
        });
    }
    let Terminator::Branch {
        cc,
        taken,
        not_taken,
        origin,
    } = block.terminator
    else {
        return None;
    };
    let (back, exit) = match cc {
        ConditionCode::ne => (taken, not_taken),
        ConditionCode::e => (not_taken, taken),
        _ => return None,
    };
    let a = *index.get(&back)?;
    let head = &residual.blocks[a];
    let jumps_to_b = matches!(head.terminator, Terminator::Jump(l, _) if l == block.label);
    (a != b && jumps_to_b && exit != back).then(|| LoopShape {
        replace: a,
        parts: vec![a, b],
        exit,
        origin,
    })
}

/// Replaces every counted loop (a self-loop, or a rotated loop of two
/// blocks) by its closed form; returns how many.
pub fn close_loops(residual: &mut Residual, calc: &mut EffectsOf) -> usize {
    let fx = calc.residual(residual);
    let live = liveness(residual, &fx);
    let index = block_index(residual);
    let mut touched = vec![false; residual.blocks.len()];
    let mut closed = 0;
    for b in 0..residual.blocks.len() {
        let Some(shape) = loop_shape(residual, &index, b) else {
            continue;
        };
        let Some(&x) = index.get(&shape.exit) else {
            continue;
        };
        let live_after = live.live_in[x];
        if live_after & ALL_FLAGS != 0 || shape.parts.iter().any(|&p| touched[p]) {
            continue;
        }
        let items: Vec<Item> = shape
            .parts
            .iter()
            .flat_map(|&p| residual.blocks[p].items.iter().cloned())
            .collect();
        let body_fx: Vec<Effects> = shape
            .parts
            .iter()
            .flat_map(|&p| fx[p].iter().cloned())
            .collect();
        if items.is_empty() {
            continue;
        }
        // Registers free for a product: not in the loop, dead after it.
        let used: u128 = body_fx
            .iter()
            .map(|e| e.uses | e.defs)
            .fold(0, |a, u| a | u);
        let free = ALL_REGS & !used & !live_after;
        let Some(items) = closed_form(&items, &body_fx, free) else {
            continue;
        };
        let block = &mut residual.blocks[shape.replace];
        block.items = items;
        block.terminator = Terminator::Jump(shape.exit, shape.origin);
        for &p in &shape.parts {
            touched[p] = true;
        }
        closed += 1;
    }
    closed
}

#[cfg(test)]
mod tests {
    use iced_x86::code_asm::*;
    use iced_x86::ConditionCode as Cc;
    use wiper_residual::Terminator;

    use crate::testutil::{after, asm, block, branch, jump, residual};

    /// `entry`, then L1 looping to itself on `body` while `jne`, then
    /// `exit` and `ret`.
    fn counted(
        body: Vec<iced_x86::Instruction>,
        exit: Vec<iced_x86::Instruction>,
    ) -> wiper_residual::Residual {
        let mut exit = exit;
        exit.extend(asm(|a| a.ret()));
        residual(vec![
            block(0, asm(|a| a.mov(eax, 1)), jump(1)),
            block(1, body, branch(Cc::ne, 1, 2)),
            block(2, exit, Terminator::Exit),
        ])
    }

    /// `[>+<-]`: `dl` gains the counter `cl`, which ends at 0.
    #[test]
    fn a_counted_loop_becomes_its_closed_form() {
        let r = counted(
            asm(|a| {
                a.inc(dl)?;
                a.dec(cl)
            }),
            Vec::new(),
        );
        insta::assert_snapshot!(after(r, super::close_loops), @"
        L0:
          mov eax,1
          jmp L1
        L1:
          add dl,cl
          mov cl,0
          jmp L2
        L2:
          ret
          exit
        ");
    }

    /// Near misses: a store each turn (a side effect the closed form
    /// would do once), and in the second loop the exit reads the flags.
    #[test]
    fn a_loop_with_a_store_or_read_flags_stays() {
        let store = counted(
            asm(|a| {
                a.inc(dl)?;
                a.mov(dword_ptr(0x3000_0000u32), edx)?;
                a.dec(cl)
            }),
            Vec::new(),
        );
        let flags = counted(
            asm(|a| {
                a.inc(dl)?;
                a.dec(cl)
            }),
            asm(|a| a.adc(eax, 0)),
        );
        insta::assert_snapshot!(
            after(store, super::close_loops) + &after(flags, super::close_loops),
            @"
        L0:
          mov eax,1
          jmp L1
        L1:
          inc dl
          mov [30000000h],edx
          dec cl
          jne L1 else L2
        L2:
          ret
          exit
        L0:
          mov eax,1
          jmp L1
        L1:
          inc dl
          dec cl
          jne L1 else L2
        L2:
          adc eax,0
          ret
          exit
        "
        );
    }

    /// Counting `cl` up: the loop runs `-cl` turns, so `dl` loses `cl`.
    #[test]
    fn a_loop_counting_up_subtracts_the_counter() {
        let r = counted(
            asm(|a| {
                a.inc(dl)?;
                a.inc(cl)
            }),
            Vec::new(),
        );
        insta::assert_snapshot!(after(r, super::close_loops), @"
        L0:
          mov eax,1
          jmp L1
        L1:
          sub dl,cl
          mov cl,0
          jmp L2
        L2:
          ret
          exit
        ");
    }

    /// A step of 5 is a product, in `edx`: free because no caller reads it
    /// at return and the loop does not use it.
    #[test]
    fn a_loop_with_a_larger_step_becomes_a_product() {
        let mut r = counted(
            asm(|a| {
                a.add(ebx, 5)?;
                a.dec(ecx)
            }),
            Vec::new(),
        );
        r.edx_dead_at_return = true;
        insta::assert_snapshot!(after(r, super::close_loops), @"
        L0:
          mov eax,1
          jmp L1
        L1:
          imul edx,ecx,5
          add ebx,edx
          mov ecx,0
          jmp L2
        L2:
          ret
          exit
        ");
    }

    /// Near misses: the same loop with `edx` read at return has no free
    /// register for the product; and `edx` is wider than the counter `cl`
    /// (it would see the 256 turns of a zero count).
    #[test]
    fn a_loop_without_a_free_register_or_with_a_wider_sum_stays() {
        let product = counted(
            asm(|a| {
                a.add(ebx, 5)?;
                a.dec(ecx)
            }),
            Vec::new(),
        );
        let wider = counted(
            asm(|a| {
                a.inc(edx)?;
                a.dec(cl)
            }),
            Vec::new(),
        );
        insta::assert_snapshot!(
            after(product, super::close_loops) + &after(wider, super::close_loops),
            @"
        L0:
          mov eax,1
          jmp L1
        L1:
          add ebx,5
          dec ecx
          jne L1 else L2
        L2:
          ret
          exit
        L0:
          mov eax,1
          jmp L1
        L1:
          inc edx
          dec cl
          jne L1 else L2
        L2:
          ret
          exit
        "
        );
    }

    /// The product may go to a register without a low byte: here `esi`,
    /// which the exit overwrites, is the only free one.
    #[test]
    fn a_product_may_use_a_register_without_a_low_byte() {
        let r = counted(
            asm(|a| {
                a.add(ebx, 5)?;
                a.dec(ecx)
            }),
            asm(|a| a.mov(esi, 1)),
        );
        let listing = after(r, super::close_loops);
        assert!(
            listing.contains("imul esi,ecx,5\n  add ebx,esi"),
            "{listing}"
        );
    }

    /// Near miss: a step with a `lock` prefix (which faults on a register
    /// operand) is no plain step; the loop stays.
    #[test]
    fn a_loop_with_a_prefixed_step_stays() {
        let mut body = asm(|a| {
            a.inc(dl)?;
            a.dec(cl)
        });
        body[0].set_has_lock_prefix(true);
        crate::testutil::assert_unchanged(counted(body, Vec::new()), super::close_loops);
    }

    /// A step of 2 is the counter added twice: no free register needed
    /// (`edx` is read at return here).
    #[test]
    fn a_small_step_is_repeated_additions() {
        let r = counted(
            asm(|a| {
                a.add(dl, 2)?;
                a.dec(cl)
            }),
            Vec::new(),
        );
        insta::assert_snapshot!(after(r, super::close_loops), @"
        L0:
          mov eax,1
          jmp L1
        L1:
          add dl,cl
          add dl,cl
          mov cl,0
          jmp L2
        L2:
          ret
          exit
        ");
    }

    /// A rotated loop (`dec cl` in L1, the rest and the test in L2, which
    /// the entry jumps to): L1 becomes the closed form of `L1; L2`, and L2
    /// stays for the first turn. The near miss: L1 branches instead of
    /// jumping to L2, so L1; L2 is not one turn.
    #[test]
    fn a_rotated_loop_becomes_its_closed_form_and_a_near_miss_stays() {
        let rotated = |first: Terminator| {
            residual(vec![
                block(0, asm(|a| a.mov(eax, 1)), jump(2)),
                block(1, asm(|a| a.dec(cl)), first),
                block(
                    2,
                    asm(|a| {
                        a.inc(dl)?;
                        a.test(cl, cl)
                    }),
                    branch(Cc::ne, 1, 3),
                ),
                block(3, asm(|a| a.ret()), Terminator::Exit),
            ])
        };
        insta::assert_snapshot!(
            after(rotated(jump(2)), super::close_loops)
                + &after(rotated(branch(Cc::s, 3, 2)), super::close_loops),
            @"
        L0:
          mov eax,1
          jmp L2
        L1:
          add dl,cl
          mov cl,0
          jmp L3
        L2:
          inc dl
          test cl,cl
          jne L1 else L3
        L3:
          ret
          exit
        L0:
          mov eax,1
          jmp L2
        L1:
          dec cl
          js L3 else L2
        L2:
          inc dl
          test cl,cl
          jne L1 else L3
        L3:
          ret
          exit
        "
        );
    }

    /// The rotated loop's test may branch out on zero (`je L3 else L1`)
    /// rather than back on not zero: the same loop, closed the same way.
    #[test]
    fn a_rotated_loop_leaving_on_zero_becomes_its_closed_form() {
        let r = residual(vec![
            block(0, asm(|a| a.mov(eax, 1)), jump(2)),
            block(1, asm(|a| a.dec(cl)), jump(2)),
            block(
                2,
                asm(|a| {
                    a.inc(dl)?;
                    a.test(cl, cl)
                }),
                branch(Cc::e, 3, 1),
            ),
            block(3, asm(|a| a.ret()), Terminator::Exit),
        ]);
        insta::assert_snapshot!(after(r, super::close_loops), @"
        L0:
          mov eax,1
          jmp L2
        L1:
          add dl,cl
          mov cl,0
          jmp L3
        L2:
          inc dl
          test cl,cl
          je L3 else L1
        L3:
          ret
          exit
        ");
    }
}
