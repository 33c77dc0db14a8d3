//! Frame elimination: once every local slot lives in a register, what is
//! left of the stack frame is bookkeeping: pushes that save callee-saved
//! registers the residual never changes, loads that restore them, and
//! stack-pointer adjustments. Then all of it goes, and the remaining
//! accesses to arguments are re-addressed from the unchanged stack pointer.
//!
//! It applies only when that is exactly what is left: every push saves a
//! register, every `[esp+d]` access is a restore of one or reads or writes
//! an argument, and there are no pops. A saved register that the residual
//! does change keeps a minimal save: `push` at entry, `pop` before every
//! `ret` (when every item after its restores in an exit block is another
//! restore, a stack-pointer adjustment or the `ret`).

use std::collections::HashMap;

use iced_x86::{Code, Instruction, Mnemonic, OpKind, Register};
use wiper_residual::{Item, Residual, Terminator};

use crate::cfg::{entry_glue_origin, prepend_to_entry};
use crate::effects::{displacement_size, memory_operand, reg_bit, EffectsOf};
use crate::frame::Frame;
use crate::liveness::{block_index, successors};

/// What to do with one item.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Action {
    Keep,
    Remove,
    /// Keep, with its `[esp+d]` operand re-addressed to this displacement.
    Readdress(i32),
}

/// Removes the frame of `residual` if it is only bookkeeping; returns
/// whether it did.
pub fn eliminate_frame(residual: &mut Residual, frame: &Frame, calc: &mut EffectsOf) -> bool {
    // The slot each saved register was pushed to.
    let mut saved: HashMap<i32, Register> = HashMap::new();
    let mut actions: Vec<Vec<Action>> = Vec::with_capacity(residual.blocks.len());
    for (b, block) in residual.blocks.iter().enumerate() {
        let mut row = Vec::with_capacity(block.items.len());
        for (k, item) in block.items.iter().enumerate() {
            let Some(&esp) = frame.esp[b].get(k) else {
                return false; // a block the entry does not reach
            };
            let Item::Instr(ins, _) = item else {
                row.push(Action::Keep);
                continue;
            };
            let action = match ins.mnemonic() {
                Mnemonic::Push => {
                    if ins.op0_kind() != OpKind::Register || !ins.op0_register().is_gpr32() {
                        return false;
                    }
                    let r = ins.op0_register();
                    if saved.insert(esp - 4, r).is_some_and(|other| other != r) {
                        return false; // two paths save different registers there
                    }
                    Action::Remove
                }
                Mnemonic::Pop | Mnemonic::Pushfd | Mnemonic::Popfd => return false,
                Mnemonic::Lea | Mnemonic::Add | Mnemonic::Sub
                    if ins.op0_kind() == OpKind::Register
                        && ins.op0_register() == Register::ESP =>
                {
                    Action::Remove
                }
                _ if memory_operand(ins).is_some() && ins.memory_base() == Register::ESP => {
                    let at = esp.wrapping_add(ins.memory_displacement32() as i32);
                    if ins.code() == Code::Mov_r32_rm32 && saved.contains_key(&at) {
                        Action::Remove // checked below: restores the register saved there
                    } else if at >= 4 {
                        Action::Readdress(at)
                    } else {
                        return false;
                    }
                }
                _ => Action::Keep,
            };
            row.push(action);
        }
        actions.push(row);
    }
    // Every removed load restores the register pushed to its slot; saved
    // registers that anything else writes are changed and keep a save.
    let saved_regs: u128 = saved
        .values()
        .filter_map(|r| reg_bit(*r))
        .fold(0, |a, b| a | b);
    let mut changed: u128 = 0;
    for (b, block) in residual.blocks.iter().enumerate() {
        for (k, item) in block.items.iter().enumerate() {
            let Item::Instr(ins, _) = item else {
                if calc.item(item, None).defs & saved_regs != 0 {
                    return false;
                }
                continue;
            };
            let restore = actions[b][k] == Action::Remove
                && ins.mnemonic() == Mnemonic::Mov
                && ins.memory_base() == Register::ESP;
            if restore {
                let at = frame.esp[b][k].wrapping_add(ins.memory_displacement32() as i32);
                if saved.get(&at) != Some(&ins.op0_register()) {
                    return false;
                }
            } else if actions[b][k] != Action::Remove {
                changed |= calc.item(item, None).defs & saved_regs;
            }
        }
    }
    // The changed registers, in push order (highest slot first).
    let mut kept: Vec<(i32, Register)> = saved
        .iter()
        .filter(|(_, r)| reg_bit(**r).is_some_and(|b| changed & b != 0))
        .map(|(&at, &r)| (at, r))
        .collect();
    kept.sort_by_key(|&(at, _)| std::cmp::Reverse(at));
    if changed != 0
        && (!restores_only_at_exits(residual, &actions, changed, calc)
            || written_before_push(residual, &actions, changed, calc))
    {
        return false;
    }
    let shift = 4 * kept.len() as i32;
    for (block, row) in residual.blocks.iter_mut().zip(&actions) {
        let items = std::mem::take(&mut block.items);
        block.items = items
            .into_iter()
            .zip(row)
            .filter_map(|(mut item, action)| match action {
                Action::Keep => Some(item),
                Action::Remove => None,
                Action::Readdress(at) => {
                    let at = at + shift;
                    if let Item::Instr(ins, _) = &mut item {
                        ins.set_memory_displacement32(at as u32);
                        ins.set_memory_displ_size(displacement_size(at));
                    }
                    Some(item)
                }
            })
            .collect();
        if block.terminator == Terminator::Exit && !kept.is_empty() {
            let ret = block.items.pop().expect("an exit block ends with ret");
            let origin = ret.origin();
            for &(_, r) in kept.iter().rev() {
                let pop = Instruction::with1(Code::Pop_r32, r).expect("pop r32 is encodable");
                block.items.push(Item::Instr(pop, origin));
            }
            block.items.push(ret);
        }
    }
    let origin = entry_glue_origin(residual);
    let pushes = kept
        .iter()
        .map(|&(_, r)| {
            let push = Instruction::with1(Code::Push_r32, r).expect("push r32 is encodable");
            Item::Instr(push, origin)
        })
        .collect();
    prepend_to_entry(residual, pushes);
    true
}

/// Whether, in every block, the items after the first restore of a changed
/// register up to the final `ret` are removed items or leave the changed
/// registers alone (so the restores can become pops right before it).
fn restores_only_at_exits(
    residual: &Residual,
    actions: &[Vec<Action>],
    changed: u128,
    calc: &mut EffectsOf,
) -> bool {
    residual.blocks.iter().zip(actions).all(|(block, row)| {
        let first = block.items.iter().zip(row).position(|(item, a)| {
            *a == Action::Remove && calc.item(item, None).defs & changed != 0
        });
        let Some(first) = first else { return true };
        let n = block.items.len();
        block.terminator == Terminator::Exit
            && block.items[first..n - 1]
                .iter()
                .zip(&row[first..n - 1])
                .all(|(item, a)| {
                    let fx = calc.item(item, None);
                    *a == Action::Remove || (fx.uses | fx.defs) & changed == 0
                })
    })
}

/// Whether some path from the entry writes a register of `changed` (other
/// than by a removed restore) before it reaches a `push` of it: that push
/// saves a value other than the entry's, which the `push` the changed
/// register keeps at the entry would not.
fn written_before_push(
    residual: &Residual,
    actions: &[Vec<Action>],
    changed: u128,
    calc: &mut EffectsOf,
) -> bool {
    let index = block_index(residual);
    let Some(&e) = residual.entry.and_then(|l| index.get(&l)) else {
        return true;
    };
    // Per block, the changed registers some path into it has written.
    let mut written_in: Vec<Option<u128>> = vec![None; residual.blocks.len()];
    written_in[e] = Some(0);
    let mut work = vec![e];
    while let Some(b) = work.pop() {
        let mut written = written_in[b].unwrap_or(0);
        let block = &residual.blocks[b];
        for (item, action) in block.items.iter().zip(&actions[b]) {
            if let Item::Instr(ins, _) = item {
                let pushed = ins.mnemonic() == Mnemonic::Push;
                if pushed && reg_bit(ins.op0_register()).is_some_and(|r| written & r != 0) {
                    return true;
                }
            }
            if *action != Action::Remove {
                written |= calc.item(item, None).defs & changed;
            }
        }
        for s in successors(&block.terminator) {
            let Some(&s) = index.get(&s) else { continue };
            let grown = written_in[s].unwrap_or(0) | written;
            if written_in[s] != Some(grown) {
                written_in[s] = Some(grown);
                work.push(s);
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use iced_x86::code_asm::*;

    use crate::testutil::{after, function};

    /// Frame elimination after the frame analysis: whether it changed `r`.
    fn unframe(r: &mut wiper_residual::Residual, c: &mut crate::effects::EffectsOf) -> bool {
        crate::frame::analyze(r).is_some_and(|f| super::eliminate_frame(r, &f, c))
    }

    /// The listing of `r` after [`unframe`].
    fn unframed(r: wiper_residual::Residual) -> String {
        after(r, unframe)
    }

    /// `ebx` is saved and restored but never changed; the argument read
    /// is re-addressed from the entry stack pointer.
    #[test]
    fn a_frame_of_bookkeeping_goes() {
        let f = function(|a| {
            a.push(ebx)?;
            a.lea(esp, ptr(esp - 8))?;
            a.mov(eax, dword_ptr(esp + 16))?;
            a.mov(ebx, dword_ptr(esp + 8))?;
            a.lea(esp, ptr(esp + 12))?;
            a.ret()
        });
        insta::assert_snapshot!(unframed(f), @"
        L0:
          mov eax,[esp+4]
          ret
          exit
        ");
    }

    /// Near miss: an address item writes the saved `ebx` (it is not an
    /// instruction, so only its effects say so): `ebx` changes, and a
    /// frame whose changed register is written by such an item stays.
    #[test]
    fn a_saved_register_an_address_item_writes_keeps_the_frame() {
        let mut f = function(|a| {
            a.push(ebx)?;
            a.lea(esp, ptr(esp - 8))?;
            a.mov(eax, dword_ptr(esp + 16))?;
            a.mov(dword_ptr(eax), ebx)?;
            a.mov(ebx, dword_ptr(esp + 8))?;
            a.lea(esp, ptr(esp + 12))?;
            a.ret()
        });
        f.blocks[0].items.insert(
            2,
            wiper_residual::Item::Address {
                reg: iced_x86::Register::EBX,
                addr: 0x0804_9000,
                origin: wiper_residual::Origin::Materialized(0),
            },
        );
        crate::testutil::assert_unchanged(f, unframe);
    }

    /// Near misses: the restore is a `pop` (the pass wants none), and in
    /// the second function `ebx` changes, so its save stays as a
    /// `push`/`pop` pair.
    #[test]
    fn a_pop_or_a_changed_register_keeps_a_save() {
        let popped = function(|a| {
            a.push(ebx)?;
            a.mov(eax, dword_ptr(esp + 8))?;
            a.pop(ebx)?;
            a.ret()
        });
        let changed = function(|a| {
            a.push(ebx)?;
            a.lea(esp, ptr(esp - 8))?;
            a.mov(ebx, dword_ptr(esp + 16))?;
            a.mov(eax, ebx)?;
            a.mov(ebx, dword_ptr(esp + 8))?;
            a.lea(esp, ptr(esp + 12))?;
            a.ret()
        });
        insta::assert_snapshot!(unframed(popped) + &unframed(changed), @"
        L0:
          push ebx
          mov eax,[esp+8]
          pop ebx
          ret
          exit
        L1:
          push ebx
          jmp L0
        L0:
          mov ebx,[esp+8]
          mov eax,ebx
          pop ebx
          ret
          exit
        ");
    }

    /// `ebx` pushed twice (two slots) and changed: it keeps its saves (a
    /// register saved twice is still saved).
    #[test]
    fn a_register_saved_twice_and_changed_keeps_its_saves() {
        let f = function(|a| {
            a.push(ebx)?;
            a.push(ebx)?;
            a.mov(ebx, 5)?;
            a.mov(eax, ebx)?;
            a.mov(ebx, dword_ptr(esp + 4))?;
            a.lea(esp, ptr(esp + 8))?;
            a.ret()
        });
        insta::assert_snapshot!(unframed(f), @"
        L1:
          push ebx
          push ebx
          jmp L0
        L0:
          mov ebx,5
          mov eax,ebx
          pop ebx
          pop ebx
          ret
          exit
        ");
    }

    /// Near miss: `inc ebx` after the restore reads and writes the
    /// restored `ebx`, so the restore cannot become a `pop` before `ret`.
    #[test]
    fn an_update_after_the_restore_keeps_the_frame() {
        let f = function(|a| {
            a.push(ebx)?;
            a.mov(ebx, dword_ptr(esp + 8))?;
            a.mov(eax, ebx)?;
            a.mov(ebx, dword_ptr(esp))?;
            a.inc(ebx)?;
            a.lea(esp, ptr(esp + 4))?;
            a.ret()
        });
        crate::testutil::assert_unchanged(f, unframe);
    }

    /// Near miss (a bug fixed with this test): two paths push different
    /// registers to the same slot, and L1 reads its pushed `esi` back into
    /// `eax`; that load is no restore of `eax`, though L2 saves `eax`
    /// there.
    #[test]
    fn a_slot_saving_different_registers_on_two_paths_keeps_the_frame() {
        use crate::testutil::{asm, block, branch, residual};
        use wiper_residual::Terminator;
        let ret = |l, pushed: AsmRegister32| {
            let items = asm(|a| {
                a.push(pushed)?;
                a.mov(eax, dword_ptr(esp))?;
                a.lea(esp, ptr(esp + 4))?;
                a.ret()
            });
            block(l, items, Terminator::Exit)
        };
        let r = residual(vec![
            block(
                0,
                asm(|a| a.test(ecx, ecx)),
                branch(iced_x86::ConditionCode::e, 1, 2),
            ),
            ret(1, esi),
            ret(2, eax),
        ]);
        crate::testutil::assert_unchanged(r, unframe);
    }

    /// Near miss (a bug fixed with this test): `eax` is written before its
    /// push, which saves 5, not the entry value that a `push` at the entry
    /// would save: the frame stays.
    #[test]
    fn a_register_written_before_its_push_keeps_the_frame() {
        let f = function(|a| {
            a.mov(eax, 5)?;
            a.push(eax)?;
            a.mov(ecx, dword_ptr(esp + 8))?;
            a.mov(eax, dword_ptr(esp))?;
            a.lea(esp, ptr(esp + 4))?;
            a.ret()
        });
        crate::testutil::assert_unchanged(f, unframe);
    }

    /// Items after the restore that leave `ebx` alone do not keep the
    /// frame: the restore still becomes a `pop` right before `ret`.
    #[test]
    fn work_after_a_restore_that_leaves_the_register_alone_is_no_obstacle() {
        let f = function(|a| {
            a.push(ebx)?;
            a.lea(esp, ptr(esp - 8))?;
            a.mov(ebx, dword_ptr(esp + 16))?;
            a.mov(eax, ebx)?;
            a.mov(ebx, dword_ptr(esp + 8))?;
            a.mov(edx, 0)?;
            a.lea(esp, ptr(esp + 12))?;
            a.ret()
        });
        insta::assert_snapshot!(unframed(f), @"
        L1:
          push ebx
          jmp L0
        L0:
          mov ebx,[esp+8]
          mov eax,ebx
          mov edx,0
          pop ebx
          ret
          exit
        ");
    }

    /// Near misses: a local slot (`[esp]` below the entry stack pointer)
    /// is more than bookkeeping; in the second function the changed `ebx`
    /// is read after its restore, so the restore cannot become a `pop`
    /// before `ret`.
    #[test]
    fn a_local_slot_or_a_read_after_the_restore_keeps_the_frame() {
        let local = function(|a| {
            a.push(ebx)?;
            a.lea(esp, ptr(esp - 8))?;
            a.mov(dword_ptr(esp), eax)?;
            a.mov(eax, dword_ptr(esp))?;
            a.mov(ebx, dword_ptr(esp + 8))?;
            a.lea(esp, ptr(esp + 12))?;
            a.ret()
        });
        let reread = function(|a| {
            a.push(ebx)?;
            a.mov(ebx, dword_ptr(esp + 8))?;
            a.mov(eax, ebx)?;
            a.mov(ebx, dword_ptr(esp))?;
            a.add(eax, ebx)?;
            a.lea(esp, ptr(esp + 4))?;
            a.ret()
        });
        insta::assert_snapshot!(unframed(local) + &unframed(reread), @"
        L0:
          push ebx
          lea esp,[esp-8]
          mov [esp],eax
          mov eax,[esp]
          mov ebx,[esp+8]
          lea esp,[esp+0Ch]
          ret
          exit
        L0:
          push ebx
          mov ebx,[esp+8]
          mov eax,ebx
          mov ebx,[esp]
          add eax,ebx
          lea esp,[esp+4]
          ret
          exit
        ");
    }

    /// An address item that writes a register no slot saves (`ecx`) is no
    /// obstacle: the frame of bookkeeping goes, as it does without the item.
    #[test]
    fn an_address_item_writing_an_unsaved_register_lets_the_frame_go() {
        let mut f = function(|a| {
            a.push(ebx)?;
            a.lea(esp, ptr(esp - 8))?;
            a.mov(eax, dword_ptr(esp + 16))?;
            a.mov(ebx, dword_ptr(esp + 8))?;
            a.lea(esp, ptr(esp + 12))?;
            a.ret()
        });
        f.blocks[0].items.insert(
            2,
            wiper_residual::Item::Address {
                reg: iced_x86::Register::ECX,
                addr: 0x0804_9000,
                origin: wiper_residual::Origin::Materialized(0),
            },
        );
        let out = unframed(f);
        assert!(
            out.starts_with("L0:\n  mov ecx,&0x8049000\n  mov eax,[esp+4]\n  ret\n"),
            "{out}"
        );
    }
}
