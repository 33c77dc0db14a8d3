//! Callee-saved registers saved with `push` give way to caller-saved ones:
//! when a function saves `R` with `push R` on entry and restores it with
//! `pop R` before every `ret`, and a caller-saved register `S` is free
//! wherever `R` holds a value of the function's (their live ranges do not
//! overlap), `R` is renamed `S` and the save and the restores go. The
//! registers [`crate::borrow`] lent to promoted slots come back this way
//! once the loops they served have closed, and so do the original
//! function's own saves.
//!
//! Without the push the stack pointer is 4 bytes higher between save and
//! restore: explicit `[esp+d]` operands there that reach above the saved
//! slot (the saves pushed before it, the return address, the arguments)
//! get `d - 4`; the frame below it moves with the stack pointer.

use iced_x86::{Code, Register};
use wiper_residual::{Item, Residual};
use wiper_x86::{abi, Reg};

use crate::cfg::is_jumped_to;
use crate::effects::{memory_operand, reg_bit, Effects, EffectsOf, Locs};
use crate::frame::Frame;
use crate::liveness::liveness;
use crate::scratch::renamed;

/// Renames every callee-saved register saved by `push`/`pop` to a free
/// caller-saved one where it can (see the module docs); returns how many.
pub fn free_pushed_registers(residual: &mut Residual, calc: &mut EffectsOf) -> usize {
    let mut freed = 0;
    for r in abi::CALLEE_SAVED.map(Reg::to_iced) {
        for s in [Reg::Ecx, Reg::Edx, Reg::Eax].map(Reg::to_iced) {
            let Some(frame) = crate::frame::analyze(residual) else {
                return freed;
            };
            if rename_pushed(residual, &frame, calc, r, s) {
                freed += 1;
                break;
            }
        }
    }
    freed
}

/// The places of a `push`/`pop` save of a register.
struct Save {
    /// The `push`: (block index, item index).
    push: (usize, usize),
    /// The `pop`s, one per `ret`.
    pops: Vec<(usize, usize)>,
    /// The saved slot's offset from the entry stack pointer.
    slot: i32,
}

/// Finds the save of `r`: the first item of the entry block touching `r`
/// or `s` is `push r`, and before every `ret` the last such item is a
/// `pop r` from the same slot. `None` when the entry block is a branch
/// target or the function makes calls.
fn find_save(
    residual: &Residual,
    frame: &Frame,
    fx: &[Vec<Effects>],
    (r, s): (Register, Register),
) -> Option<Save> {
    let entry = residual.entry?;
    let e = residual.blocks.iter().position(|b| b.label == entry)?;
    if is_jumped_to(residual, entry) || fx.iter().flatten().any(|f| f.uses == !0) {
        return None;
    }
    let bits = reg_bit(r)? | reg_bit(s)?;
    let touches = |f: &Effects| (f.uses | f.defs) & bits != 0;
    let is = |b: usize, k: usize, code: Code| {
        matches!(&residual.blocks[b].items[k], Item::Instr(i, _)
            if i.code() == code && i.op0_register() == r)
    };
    let k = fx[e].iter().position(touches)?;
    if !is(e, k, Code::Push_r32) {
        return None;
    }
    let slot = frame.esp[e][k] - 4;
    let mut pops = Vec::new();
    for (b, block_fx) in fx.iter().enumerate() {
        if !block_fx.last().is_some_and(|f| f.leaves) {
            continue;
        }
        let k = block_fx[..block_fx.len() - 1].iter().rposition(touches)?;
        if !is(b, k, Code::Pop_r32) || frame.esp.get(b)?.get(k) != Some(&slot) {
            return None;
        }
        pops.push((b, k));
    }
    Some(Save {
        push: (e, k),
        pops,
        slot,
    })
}

/// Renames `r` to `s` and drops its save, when their live ranges (without
/// the save, the restores and the caller's use of `r` at `ret`) never
/// overlap and every other item touching `r` can be renamed.
fn rename_pushed(
    residual: &mut Residual,
    frame: &Frame,
    calc: &mut EffectsOf,
    r: Register,
    s: Register,
) -> bool {
    let mut fx = calc.residual(residual);
    let Some(save) = find_save(residual, frame, &fx, (r, s)) else {
        return false;
    };
    let (rb, sb) = (reg_bit(r).expect("gpr"), reg_bit(s).expect("gpr"));
    let (e, k) = save.push;
    fx[e][k].uses &= !rb;
    for &(b, k) in &save.pops {
        fx[b][k].defs &= !rb;
        fx[b][k].kills &= !rb;
    }
    for f in fx.iter_mut().flatten().filter(|f| f.leaves) {
        f.uses &= !rb;
    }
    let live = liveness(residual, &fx);
    let overlap = |out: Locs, f: &Effects| {
        let both = rb | sb;
        out & both == both || f.defs & rb != 0 && out & sb != 0 || f.defs & sb != 0 && out & rb != 0
    };
    if live.live_out[e][k] & rb != 0 {
        return false; // r's entry value is read after the save
    }
    for (b, block_fx) in fx.iter().enumerate() {
        if live.live_in[b] & (rb | sb) == rb | sb {
            return false;
        }
        for (k, f) in block_fx.iter().enumerate() {
            if overlap(live.live_out[b][k], f) {
                return false;
            }
        }
    }
    if touches_slot(residual, frame, &save) {
        return false; // the saved word is read or written while saved
    }
    let mut edits = Vec::new();
    for (b, block) in residual.blocks.iter().enumerate() {
        for (k, item) in block.items.iter().enumerate() {
            let skip = save.push == (b, k) || save.pops.contains(&(b, k)) || fx[b][k].leaves;
            if skip || (fx[b][k].uses | fx[b][k].defs) & rb == 0 {
                continue;
            }
            match renamed(item, r, s) {
                Some(new) => edits.push((b, k, new)),
                None => return false,
            }
        }
    }
    for (b, k, new) in edits {
        residual.blocks[b].items[k] = new;
    }
    lower_frame_operands(residual, frame, save.slot);
    let mut gone = save.pops;
    gone.push(save.push);
    gone.sort_unstable_by(|x, y| y.cmp(x));
    for (b, k) in gone {
        residual.blocks[b].items.remove(k);
    }
    true
}

/// Whether an item other than the save's `push` and `pop`s reads or
/// writes the saved word: an explicit `[esp+d]` operand that overlaps it,
/// or a `push` or `pop` of another value at its place.
fn touches_slot(residual: &Residual, frame: &Frame, save: &Save) -> bool {
    let overlaps = |at: i32, size: i32| at < save.slot + 4 && at + size > save.slot;
    for (b, (block, esps)) in residual.blocks.iter().zip(&frame.esp).enumerate() {
        for (k, (item, &esp)) in block.items.iter().zip(esps).enumerate() {
            let Item::Instr(ins, _) = item else { continue };
            if save.push == (b, k) || save.pops.contains(&(b, k)) {
                continue;
            }
            let explicit = memory_operand(ins).is_some()
                && ins.mnemonic() != iced_x86::Mnemonic::Lea
                && ins.memory_base() == Register::ESP;
            if explicit {
                let at = esp.wrapping_add(ins.memory_displacement32() as i32);
                if overlaps(at, ins.memory_size().size() as i32) {
                    return true;
                }
            }
            let inc = ins.stack_pointer_increment();
            if inc < 0 && overlaps(esp + inc, -inc) || inc > 0 && overlaps(esp, inc) {
                return true;
            }
        }
    }
    false
}

/// Gives `d - 4` to every explicit `[esp+d]` operand executed while the
/// slot at `slot` is pushed (the stack pointer at or below it) that reaches
/// above the slot.
fn lower_frame_operands(residual: &mut Residual, frame: &Frame, slot: i32) {
    for (block, esps) in residual.blocks.iter_mut().zip(&frame.esp) {
        for (item, &esp) in block.items.iter_mut().zip(esps) {
            let Item::Instr(ins, _) = item else { continue };
            if memory_operand(ins).is_none()
                || ins.mnemonic() == iced_x86::Mnemonic::Lea
                || ins.memory_base() != Register::ESP
            {
                continue;
            }
            let d = ins.memory_displacement32() as i32;
            if esp <= slot && esp.wrapping_add(d) >= slot + 4 {
                let d = d - 4;
                ins.set_memory_displacement32(d as u32);
                ins.set_memory_displ_size(if d == d as i8 as i32 { 1 } else { 4 });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use iced_x86::code_asm::*;

    use crate::testutil::{after, function};

    /// `edi` is pushed, holds an argument, and is popped: `ecx` is free,
    /// so it takes over and the argument's offset moves down.
    #[test]
    fn a_pushed_register_gives_way_to_a_free_scratch_register() {
        let f = function(|a| {
            a.push(edi)?;
            a.mov(edi, dword_ptr(esp + 8))?;
            a.mov(eax, dword_ptr(edi))?;
            a.pop(edi)?;
            a.ret()
        });
        insta::assert_snapshot!(after(f, super::free_pushed_registers), @"
        L0:
          mov ecx,[esp+4]
          mov eax,[ecx]
          ret
          exit
        ");
    }

    /// The save need not open the function: items before it that touch
    /// neither register stay where they are.
    #[test]
    fn a_save_after_other_work_gives_way_too() {
        let f = function(|a| {
            a.mov(edx, dword_ptr(esp + 8))?;
            a.push(edi)?;
            a.mov(edi, dword_ptr(esp + 8))?;
            a.mov(eax, dword_ptr(edi))?;
            a.add(eax, edx)?;
            a.pop(edi)?;
            a.ret()
        });
        insta::assert_snapshot!(after(f, super::free_pushed_registers), @"
        L0:
          mov edx,[esp+8]
          mov ecx,[esp+4]
          mov eax,[ecx]
          add eax,edx
          ret
          exit
        ");
    }

    /// Near miss: the entry block is a loop's head (L2 drops the saved
    /// word and jumps back), so its `push` runs once per turn and cannot
    /// go while the drop stays.
    #[test]
    fn a_save_in_a_loop_head_stays() {
        use crate::testutil::{asm, block, branch, jump, residual};
        use wiper_residual::Terminator;
        let r = residual(vec![
            block(
                0,
                asm(|a| {
                    a.push(edi)?;
                    a.mov(edi, dword_ptr(esp + 8))?;
                    a.mov(eax, dword_ptr(edi))?;
                    a.test(eax, eax)
                }),
                branch(iced_x86::ConditionCode::ne, 2, 1),
            ),
            block(2, asm(|a| a.add(esp, 4)), jump(0)),
            block(
                1,
                asm(|a| {
                    a.pop(edi)?;
                    a.ret()
                }),
                Terminator::Exit,
            ),
        ]);
        crate::testutil::assert_unchanged(r, super::free_pushed_registers);
    }

    /// Near miss: `edi`'s entry value is read before the save, so no
    /// other register may stand for `edi` there.
    #[test]
    fn a_register_read_before_its_save_stays() {
        let f = function(|a| {
            a.mov(eax, edi)?;
            a.push(edi)?;
            a.mov(edi, dword_ptr(esp + 8))?;
            a.mov(edx, dword_ptr(edi))?;
            a.add(eax, edx)?;
            a.pop(edi)?;
            a.ret()
        });
        insta::assert_snapshot!(after(f, super::free_pushed_registers), @"
        L0:
          mov eax,edi
          push edi
          mov edi,[esp+8]
          mov edx,[edi]
          add eax,edx
          pop edi
          ret
          exit
        ");
    }

    /// Near miss: the save is dropped from the stack and another `push`
    /// lands in its place, so the restoring `pop` reads that value.
    #[test]
    fn a_save_overwritten_by_another_push_stays() {
        let f = function(|a| {
            a.push(edi)?;
            a.mov(edi, dword_ptr(esp + 8))?;
            a.mov(eax, dword_ptr(edi))?;
            a.lea(esp, ptr(esp + 4))?;
            a.push(eax)?;
            a.pop(edi)?;
            a.ret()
        });
        crate::testutil::assert_unchanged(f, super::free_pushed_registers);
    }

    /// Near miss: another `pop` reads the saved word (the entry `edi`,
    /// returned in `eax`) before the stack pointer goes back over it for
    /// the restore; without the save it would pop the return address.
    #[test]
    fn a_save_popped_into_another_register_stays() {
        let f = function(|a| {
            a.push(edi)?;
            a.mov(edi, dword_ptr(esp + 8))?;
            a.mov(edx, dword_ptr(edi))?;
            a.pop(eax)?;
            a.lea(esp, ptr(esp - 4))?;
            a.pop(edi)?;
            a.ret()
        });
        crate::testutil::assert_unchanged(f, super::free_pushed_registers);
    }

    /// Near misses: every caller-saved register is live while `edi` is,
    /// and in the second function the restore is not a `pop`.
    #[test]
    fn a_pushed_register_stays_when_no_scratch_is_free() {
        let busy = function(|a| {
            a.push(edi)?;
            a.mov(edi, dword_ptr(esp + 8))?;
            a.mov(eax, dword_ptr(esp + 12))?;
            a.mov(ecx, dword_ptr(esp + 16))?;
            a.mov(edx, dword_ptr(edi))?;
            a.add(edx, ecx)?;
            a.add(eax, edi)?;
            a.add(eax, edx)?;
            a.pop(edi)?;
            a.ret()
        });
        let by_mov = function(|a| {
            a.push(edi)?;
            a.mov(edi, dword_ptr(esp + 8))?;
            a.mov(eax, dword_ptr(edi))?;
            a.mov(edi, dword_ptr(esp))?;
            a.lea(esp, ptr(esp + 4))?;
            a.ret()
        });
        insta::assert_snapshot!(
            after(busy, super::free_pushed_registers) + &after(by_mov, super::free_pushed_registers),
            @"
        L0:
          push edi
          mov edi,[esp+8]
          mov eax,[esp+0Ch]
          mov ecx,[esp+10h]
          mov edx,[edi]
          add edx,ecx
          add eax,edi
          add eax,edx
          pop edi
          ret
          exit
        L0:
          push edi
          mov edi,[esp+8]
          mov eax,[edi]
          mov edi,[esp]
          lea esp,[esp+4]
          ret
          exit
        "
        );
    }
}
